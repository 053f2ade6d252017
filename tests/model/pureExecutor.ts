import { expect } from 'vitest'
import { createActor, fromPromise } from 'xstate'
import {
  type AuthEmitted,
  configureAuthMachine,
  type RefreshFailure,
  type RefreshInput,
  type Session,
} from '../../machines/index.js'
import { MODEL_RANDOM, MODEL_START, MODEL_TIMING, type ModelPath, SLEEP } from './paths.mjs'
import { createConditions, createSleepableClock, createTransitionLog } from './support.js'

interface RefreshCall {
  input: RefreshInput
  signal: AbortSignal
  resolve(session: Session): void
  reject(failure: RefreshFailure): void
}

/**
 * Executor (a): the pure statechart, as `configureAuthMachine` builds it, on a sleepable
 * manual clock, with a refresh actor the test settles by hand. Every step is checked against
 * the model: transition taken, state value, the whole context, emitted events, the refresh
 * actor's input, its cancellation and the timers armed.
 *
 * @returns the transition keys the actor took, in order.
 */
export async function runOnMachine(path: ModelPath): Promise<string[]> {
  const clock = createSleepableClock(MODEL_START)
  const calls: RefreshCall[] = []
  const machine = configureAuthMachine({
    ...MODEL_TIMING,
    random: MODEL_RANDOM,
    now: clock.now,
  }).provide({
    actors: {
      refreshSession: fromPromise<Session, RefreshInput>(
        ({ input, signal }) =>
          new Promise((resolve, reject) => calls.push({ input, signal, resolve, reject })),
      ),
    },
  })
  const conditions = createConditions()
  const log = createTransitionLog(conditions.notify)
  const actor = createActor(machine, { clock, inspect: log.inspect })
  log.follow(actor)
  const emitted: AuthEmitted[] = []
  actor.on('*', (event) => emitted.push(event))
  actor.start()

  let generation = 0
  try {
    for (const [index, step] of path.steps.entries()) {
      const where = `step ${index + 1} (${step.took}) of ${path.name}`
      const takenBefore = log.taken.length
      const emittedBefore = emitted.length
      const callsBefore = calls.length
      const { machineEvent } = step
      const type = step.event.type

      if (type === SLEEP) clock.sleep(step.delta)
      else if (type.startsWith('xstate.after.')) clock.advance(step.delay)
      else if (machineEvent?.type === 'xstate.done.actor.refresh') {
        calls.at(-1)?.resolve(machineEvent.output)
      } else if (machineEvent?.type === 'xstate.error.actor.refresh') {
        calls.at(-1)?.reject(machineEvent.error)
      } else if (machineEvent) actor.send(machineEvent as Parameters<typeof actor.send>[0])

      const expectedTaken = takenBefore + (step.transitions.length > 0 ? 1 : 0)
      // A settled refresh reaches the actor a few microtasks later: wait for its microstep.
      await conditions.until(
        () => log.taken.length >= expectedTaken,
        () => `the transition of ${where}`,
      )
      expect(log.taken.slice(takenBefore), where).toEqual(
        step.transitions.length > 0 ? [step.transitions] : [],
      )

      const snapshot = actor.getSnapshot()
      const expected = step.after.snapshot
      expect(snapshot.value, where).toEqual(expected.value)
      expect(snapshot.context, where).toEqual(expected.context)
      expect(emitted.slice(emittedBefore), where).toEqual(step.emitted)
      expect(clock.now(), where).toBe(step.after.now)
      // The timers the model expects armed are the ones the actor armed.
      expect(clock.pending(), where).toBe(Object.keys(step.after.timers).length)

      // The refresh actor starts exactly when the model enters `requesting`, with its input.
      expect(calls.length, where).toBe(callsBefore + (step.spawned ? 1 : 0))
      if (step.spawned) expect(calls.at(-1)?.input, where).toEqual(step.spawned)
      // Leaving `requesting` any other way than by its result aborts the call.
      const settledByResult =
        machineEvent?.type === 'xstate.done.actor.refresh' ||
        machineEvent?.type === 'xstate.error.actor.refresh'
      if (step.stopped && !settledByResult) {
        expect(calls[callsBefore - 1]?.signal.aborted, `${where}: refresh aborted`).toBe(true)
      }

      // Invariant 2: the queue only exists while refreshing. Generations never go back.
      if (!snapshot.matches('refreshing')) expect(snapshot.context.queue, where).toEqual([])
      expect(snapshot.context.generation, where).toBeGreaterThanOrEqual(generation)
      generation = snapshot.context.generation
    }
    return log.all()
  } finally {
    actor.stop()
  }
}
