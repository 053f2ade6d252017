import type { ActorRefLike, InspectionEvent } from 'xstate'
import { createManualClock, type ManualClock } from '../../src/testing/index.js'
import { transitionKey } from './paths.mjs'

/**
 * A manual clock that can also sleep: `sleep(ms)` moves `now()` without running or
 * postponing anything, as a suspended laptop or a frozen background tab does. Timers keep
 * their remaining delay, so in wall-clock terms they fire `ms` later.
 */
export interface SleepableClock {
  now(): number
  setTimeout(fn: () => void, ms: number): number
  clearTimeout(handle: unknown): void
  /** Time passes awake: due timers run. */
  advance(ms: number): void
  /** Time passes asleep: no timer runs. */
  sleep(ms: number): void
  /** Timers armed and not yet fired or cleared. */
  pending(): number
  /** How long until the next armed timer is due (awake time), or `undefined` if none is. */
  nextIn(): number | undefined
  readonly base: ManualClock
}

export function createSleepableClock(start: number): SleepableClock {
  const base = createManualClock(start)
  let slept = 0
  const due = new Map<number, number>()
  return {
    base,
    now: () => base.now() + slept,
    setTimeout(fn, ms) {
      const handle = base.setTimeout(() => {
        due.delete(handle)
        fn()
      }, ms)
      due.set(handle, base.now() + (Number.isFinite(ms) && ms > 0 ? ms : 0))
      return handle
    },
    clearTimeout(handle) {
      base.clearTimeout(handle)
      if (typeof handle === 'number') due.delete(handle)
    },
    advance: (ms) => base.advance(ms),
    sleep: (ms) => {
      slept += ms
    },
    pending: () => base.pending(),
    nextIn() {
      if (due.size === 0) return undefined
      return Math.max(0, Math.min(...due.values()) - base.now())
    },
  }
}

/** How long a step may take in real time before the test reports what it was waiting for. */
export const WATCHDOG_MS = 10_000

/**
 * Waits for conditions that other code makes true, re-checked whenever `notify()` runs (on
 * every snapshot, settlement and server event the caller wires in): no polling, no sleeps.
 * The real-time watchdog only turns a hang into a readable failure.
 */
export function createConditions(watchdogMs = WATCHDOG_MS) {
  const checks = new Set<() => void>()
  return {
    notify(): void {
      for (const check of [...checks]) check()
    },
    until(predicate: () => boolean, what: () => string): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          checks.delete(check)
          reject(new Error(`still waiting after ${watchdogMs} ms for ${what()}`))
        }, watchdogMs)
        const check = () => {
          let met: boolean
          try {
            met = predicate()
          } catch (error) {
            checks.delete(check)
            clearTimeout(timer)
            return reject(error)
          }
          if (!met) return
          checks.delete(check)
          clearTimeout(timer)
          resolve()
        }
        checks.add(check)
        check()
      })
    },
  }
}

export type Conditions = ReturnType<typeof createConditions>

/** Bounds a promise that should settle by itself (a server's `waitFor`) with the watchdog. */
export function watchdog<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still waiting after ${WATCHDOG_MS} ms for ${what}`)),
      WATCHDOG_MS,
    )
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}

/**
 * The transitions an actor takes, as {@link transitionKey}s, one entry per microstep that took
 * any, read from '@xstate.microstep' inspection events of the actor itself.
 */
export function createTransitionLog(onChange: () => void = () => undefined) {
  const taken: string[][] = []
  let recording = true
  let root: ActorRefLike | undefined
  return {
    taken,
    /** Pass to `createActor(…, { inspect })` or to `actor.system.inspect()`. */
    inspect(event: InspectionEvent): void {
      if (!recording || event.type !== '@xstate.microstep') return
      root ??= event.actorRef
      if (event.actorRef !== root || event._transitions.length === 0) return
      taken.push(event._transitions.map(transitionKey))
      onChange()
    },
    /** Only `actor`'s own microsteps count (children have their own). */
    follow(actor: ActorRefLike): void {
      root = actor
    },
    stop(): void {
      recording = false
    },
    /** Every transition taken so far, flattened. */
    all(): string[] {
      return taken.flat()
    },
  }
}

export type TransitionLog = ReturnType<typeof createTransitionLog>
