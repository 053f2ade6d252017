import { errorName } from '../../errors.js'

/**
 * The parts of a node-redis client (`redis` 5 or 6, `createClient()`) the driver uses. Pass
 * your own client as `client`: connect it yourself (before or after creating the auth
 * client); the driver never connects or closes it, and opens one `duplicate()` of it for
 * pub/sub, which it owns.
 */
export interface RedisClientLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  sendCommand(args: ReadonlyArray<string>): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  duplicate(): RedisClientLike
  on(event: string, listener: (...args: unknown[]) => void): unknown
  off(event: string, listener: (...args: unknown[]) => void): unknown
  destroy?(): void
  disconnect?(): Promise<unknown>
  unref?(): void
}

/** Redis did not answer in time, could not be reached, or refused: the caller goes on in-process. */
export class Unavailable extends Error {
  override readonly name = 'Unavailable'
}

// Error replies that mean "Redis is there but cannot serve now": treated as an outage.
const PASSING = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY'])

/**
 * The code of a Redis error reply (`NOPERM`, `WRONGPASS`, …), or `undefined` for anything
 * else (a network error, a timeout). node-redis' `ErrorReply` carries the server's message;
 * only its first word is ever repeated, never the rest.
 */
function replyCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined
  const kind = error.constructor?.name
  if (kind !== 'ErrorReply' && kind !== 'SimpleError' && kind !== 'BlobError') return undefined
  return /^([A-Z]{3,})\b/.exec(error.message)?.[1] ?? 'ERR'
}

/** How an error is named in a warning: a reply code, else the error's class. */
const describe = (error: unknown) => replyCode(error) ?? errorName(error)

/** How often a Redis that stopped answering (connected, but stalled) is asked again. */
const PROBE_INTERVAL = 1_000

export interface LinkOptions {
  client: RedisClientLike
  /** Whether the link made the client (and so connects and closes it). */
  owned: boolean
  /** How long one command may take before Redis counts as unavailable. */
  timeout: number
  warn(message: string): void
  /** Redis answers again after an outage, or the subscription (re)started: read the record. */
  recovered(): void
  /** A message on the channel. */
  message(raw: string): void
  channel: string
}

/**
 * The driver's connection to Redis: commands bounded in time, one warning per outage and
 * one on recovery (reconnect attempts are silent), and the subscription for the channel.
 * Its own sockets are unref'd: an idle coordinator does not keep the process alive.
 */
export function createLink(options: LinkOptions) {
  const { client, owned, timeout, warn, channel } = options
  let down = false
  let closed = false
  let probe: ReturnType<typeof setInterval> | undefined
  const refusals = new Set<string>()
  const pending = new Set<() => void>()
  const subscriber = client.duplicate()
  const ours = owned ? [client, subscriber] : [subscriber]

  const outage = (error: unknown): Unavailable => {
    if (!down && !closed) {
      down = true
      warn(
        `Redis is unavailable (${describe(error)}); refreshing in this process alone until it is back.`,
      )
      // Connected but not answering: no 'ready' event will say it is back, so ask.
      if (client.isReady) startProbe()
    }
    return error instanceof Unavailable ? error : new Unavailable('Redis is unavailable.')
  }
  const back = () => {
    if (!down || closed) return
    down = false
    if (probe) clearInterval(probe)
    probe = undefined
    warn('Redis is reachable again; the session is shared across processes once more.')
    options.recovered()
  }
  function startProbe(): void {
    probe ??= setInterval(() => {
      if (client.isReady) void bounded(['PING'], Date.now() + timeout).then(back, () => undefined)
    }, PROBE_INTERVAL)
    ;(probe as { unref?: () => void }).unref?.()
  }

  // Without a listener an 'error' event would crash the process; reconnects are reported once.
  const onError = (error: unknown) => {
    if (!client.isReady) outage(error)
  }
  const onReady = () => back()
  client.on('error', onError)
  client.on('ready', onReady)
  subscriber.on('error', () => undefined)
  let subscribed = false
  subscriber.on('ready', () => {
    // Messages lost while the subscriber was away are caught up by reading the record.
    if (subscribed) options.recovered()
  })

  for (const c of ours) c.unref?.()
  const connect = (c: RedisClientLike) => c.connect().catch(() => undefined)
  const connecting = ours.filter((c) => c !== subscriber && !c.isOpen).map(connect)
  const subscription = connect(subscriber)
    .then(() => {
      if (closed) throw new Unavailable('closed')
      return subscriber.subscribe(channel, (message) => options.message(message))
    })
    .then(() => {
      subscribed = true
      // What was written before the subscription took effect is read now.
      options.recovered()
    })
    .catch(() => undefined)

  /** Resolves `true` once the client is ready, `false` at `deadline` or on close. */
  const connected = (deadline: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (client.isReady) return resolve(true)
      if (closed) return resolve(false)
      const finish = (ready: boolean) => {
        clearTimeout(timer)
        client.off('ready', onConnected)
        pending.delete(onClose)
        resolve(ready)
      }
      const onConnected = () => finish(true)
      const onClose = () => finish(false)
      const timer = setTimeout(onClose, Math.max(0, deadline - Date.now()))
      client.on('ready', onConnected)
      pending.add(onClose)
    })

  async function bounded(args: string[], deadline: number): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Unavailable('timed out')), deadline - Date.now())
    })
    try {
      return await Promise.race([client.sendCommand(args), late])
    } finally {
      clearTimeout(timer)
    }
  }

  const close = (c: RedisClientLike) => {
    try {
      if (c.destroy) c.destroy()
      else void c.disconnect?.().catch(() => undefined)
    } catch {
      // Closed already.
    }
  }

  return {
    /** Resolves once the channel is subscribed, or at `deadline` (Redis away): news is not missed. */
    listening(deadline: number): Promise<void> {
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        pending.add(resolve)
      })
      return Promise.race([subscription, late]).finally(() => clearTimeout(timer))
    },

    /**
     * Runs one command; rejects with {@link Unavailable} when Redis cannot answer by
     * `deadline` (default: the link's timeout from now) or refuses.
     */
    async command(args: string[], deadline = Date.now() + timeout): Promise<unknown> {
      if (closed) throw new Unavailable('The coordinator is closed.')
      // Before the first connection, or while reconnecting outside a declared outage, the
      // client gets its time; in a declared outage the refresh does not wait for it.
      if (!client.isReady && (down || !(await connected(deadline)))) {
        throw outage(new Unavailable('not connected'))
      }
      try {
        const reply = await bounded(args, deadline)
        back()
        return reply
      } catch (error) {
        const code = replyCode(error)
        if (code === undefined || PASSING.has(code)) throw outage(error)
        // Redis answered, with a refusal that will not pass by itself (an ACL, a key of
        // another type): said once per kind, not taken for an outage.
        if (!refusals.has(code)) {
          refusals.add(code)
          warn(
            `Redis refused \`${args[0]}\` (${code}); refreshing in this process alone. Check the ACL user (see the README's Node services section) and that the key is not used by anything else.`,
          )
        }
        throw new Unavailable('refused')
      }
    },

    close(): void {
      closed = true
      if (probe) clearInterval(probe)
      for (const finish of pending) finish()
      client.off('error', onError)
      client.off('ready', onReady)
      for (const c of ours) close(c)
      // A connect under way is not stopped by destroy(): it still opens its socket (and says
      // isOpen false, isReady true). Closed again once it settles.
      for (const attempt of [...connecting, subscription]) {
        void attempt.finally(() => {
          for (const c of ours) close(c)
        })
      }
    },
  }
}

export type Link = ReturnType<typeof createLink>
