import { randomBytes } from 'node:crypto'
import { Unavailable } from './link.js'
import { RELEASE, RENEW } from './scripts.js'

/** A lock this process holds. */
export interface Lock {
  /**
   * Whether the lock is still this process's: confirmed by Redis when the last confirmation
   * is older than a third of its time to live (the process may have been paused).
   */
  held(): Promise<boolean>
  /** Stops renewing, and releases the lock if this process still holds it. */
  release(): Promise<void>
}

export interface LocksOptions {
  command(args: string[]): Promise<unknown>
  lockKey: string
  channel: string
  lockTtl: number
  /** How long a holder renews at most: a call out longer is presumed lost, as in-process. */
  patience: number
  warn(message: string): void
}

/**
 * The refresh lock: `SET NX PX` with a random owner, renewed by its holder, released by a
 * compare-and-delete that wakes the waiters. What a stalled Redis may have run after the
 * client gave up on it (a `SET` that timed out, a release that failed) is released once Redis
 * answers again, so no one waits out a lock nobody holds.
 */
export function createLocks(options: LocksOptions) {
  const { command, lockKey, channel, lockTtl, patience, warn } = options
  const orphans = new Set<string>()
  const waiters = new Set<() => void>()
  const holding = new Set<Lock>()
  let warnedForeign = false

  const release = (owner: string) =>
    command(['EVAL', RELEASE, '1', lockKey, owner, channel]).then(
      () => orphans.delete(owner),
      () => orphans.add(owner),
    )

  function hold(owner: string): Lock {
    const startedAt = performance.now()
    let confirmedAt = startedAt
    let lost = false
    const extend = () =>
      command(['EVAL', RENEW, '1', lockKey, owner, String(lockTtl)]).then((reply) => {
        // Lost (expired while this process or Redis was slow): the version check keeps the
        // write honest.
        lost = Number(reply) === 0
        if (lost) clearInterval(renew)
        else confirmedAt = performance.now()
        return !lost
      })
    const renew = setInterval(() => {
      if (performance.now() - startedAt > patience) return clearInterval(renew)
      extend().catch(() => undefined)
    }, lockTtl / 3)
    ;(renew as { unref?: () => void }).unref?.()
    const lock: Lock = {
      async held() {
        if (lost) return false
        if (performance.now() - confirmedAt < lockTtl / 3) return true
        return extend().catch(() => false)
      },
      async release() {
        clearInterval(renew)
        holding.delete(lock)
        await release(owner)
      },
    }
    holding.add(lock)
    return lock
  }

  return {
    /** The lock, or `undefined` while another process holds it. */
    async take(): Promise<Lock | undefined> {
      const owner = randomBytes(16).toString('hex')
      let reply: unknown
      try {
        reply = await command(['SET', lockKey, owner, 'NX', 'PX', String(lockTtl)])
      } catch (error) {
        // Timed out, yet maybe run by a Redis that stalled: released once it answers again.
        orphans.add(owner)
        throw error
      }
      return reply === 'OK' ? hold(owner) : undefined
    },

    /**
     * Waits until the holder may be done: any news on the channel, or the end of the lock's
     * time to live. A lock without one was not set by this library (a restored dump, another
     * program): said once, and the refresh runs in this process.
     */
    async wait(signal: AbortSignal): Promise<void> {
      // Listening before asking: a release announced meanwhile is not missed.
      const heard = listen(signal)
      let left: number
      try {
        left = Number(await command(['PTTL', lockKey]))
      } catch (error) {
        heard.stop()
        throw error
      }
      if (left === -2) return heard.stop() // gone meanwhile: try again at once
      if (left < 0) {
        heard.stop()
        if (!warnedForeign) {
          warnedForeign = true
          warn(
            `\`${lockKey}\` has no expiry: it was not set by auth-machine. Refreshing in this process alone until it is removed.`,
          )
        }
        throw new Unavailable('foreign lock')
      }
      await heard.until(Math.min(Math.max(left, 20), lockTtl))
    },

    /** A message arrived on the channel: waiters look again. */
    wake(): void {
      for (const wake of waiters) wake()
    },

    /** Releases what a stalled Redis may still hold for this process. */
    async releaseOrphans(): Promise<void> {
      for (const owner of [...orphans]) await release(owner)
    },

    /** Releases every lock this process holds (it is closing). */
    releaseAll(): Promise<unknown> {
      return Promise.all([...holding].map((lock) => lock.release()))
    },
  }

  /** News on the channel from now on: `until(ms)` resolves on the first, or after `ms`. */
  function listen(signal: AbortSignal) {
    let heard = false
    let wake = () => {
      heard = true
    }
    const onNews = () => wake()
    waiters.add(onNews)
    const stop = () => {
      waiters.delete(onNews)
    }
    return {
      stop,
      until: (ms: number) =>
        new Promise<void>((resolve, reject) => {
          let timer: ReturnType<typeof setTimeout> | undefined
          const done = () => {
            clearTimeout(timer)
            stop()
            signal.removeEventListener('abort', abort)
            resolve()
          }
          const abort = () => {
            done()
            reject(signal.reason)
          }
          if (signal.aborted) return abort()
          if (heard) return done()
          timer = setTimeout(done, ms)
          wake = done
          signal.addEventListener('abort', abort, { once: true })
        }),
    }
  }
}

export type Locks = ReturnType<typeof createLocks>
