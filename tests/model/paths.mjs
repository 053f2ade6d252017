/**
 * The test model of the auth statechart: which events a test can send in which state, what
 * they do to time, and the paths through the machine that walk every declared transition.
 *
 * Plain JavaScript so that both the test suite (TypeScript, via `paths.d.mts`) and
 * `scripts/machine-paths.mjs` (Node, on the built package) share one generator. It never
 * imports the machine itself: callers pass `configureAuthMachine` from wherever they load it.
 *
 * Why not `createTestModel`: it refuses machines with `invoke` and `after`, which is where
 * this machine's behaviour lives. So the model is an actor logic of its own around the pure
 * `transition()` of the real machine, and the path functions of `xstate/graph` walk it:
 *
 * - the refresh actor's completion and failure are sent as the events the actor system
 *   would deliver (`xstate.done.actor.refresh`, `xstate.error.actor.refresh`);
 * - delayed transitions are sent as their `xstate.after.<delay>.<state id>` events, at the
 *   moment the model's clock says the timer fires (the model tracks armed timers from the
 *   `xstate.raise` / `xstate.cancel` actions that `transition()` returns);
 * - `clock.sleep` is the one event that is not the machine's: the device is suspended until
 *   the token has expired, so time moves and timers do not run (a laptop lid, a frozen tab).
 *   It is what makes a due `WAKE` and a client-side `TOKEN_NEEDED` possible.
 *
 * The state serializer keeps the state value and the few context facts that decide which
 * transition an event takes (never the queue's contents), plus the transition that led
 * there: shortest paths to every (abstract state, incoming transition) pair therefore walk
 * every reachable transition, as `createTestModel` does with `serializeTransition`.
 */
import { initialTransition, transition as machineTransition } from 'xstate'
import { getShortestPaths, toDirectedGraph } from 'xstate/graph'

/** Where the model's clock starts (epoch ms); executors start their clocks here too. */
export const MODEL_START = Date.UTC(2030, 0, 1)
/** Access token lifetime: 30 days, longer than one timer span, so the clamped timer shows. */
export const ACCESS_TTL_SECONDS = 30 * 86_400
/** Refresh token lifetime: outlives a few sleeps past the access token's expiry. */
export const REFRESH_TTL_SECONDS = 400 * 86_400
/** Timing the model and both executors use; one retry so both retry branches are reachable. */
export const MODEL_TIMING = Object.freeze({
  refreshMargin: 60_000,
  refreshTimeout: 10_000,
  retry: Object.freeze({ retries: 1, baseDelay: 1_000, maxDelay: 1_000 }),
})
/**
 * How long the client's refresh owner lets a retry join a call still on the wire (two
 * `refreshTimeout`s, as `createAuthClient` sets it); past that a retry sends a new call.
 */
export const MODEL_PATIENCE = 2 * MODEL_TIMING.refreshTimeout
/** Jitter the model assumes: the longest backoff, so advancing by it fires any real jitter. */
export const MODEL_RANDOM = () => 1

/** The environment event: the device sleeps until the access token has expired. */
export const SLEEP = 'clock.sleep'

const REFRESH_ACTOR = 'refresh'
const DONE = `xstate.done.actor.${REFRESH_ACTOR}`
const ERROR = `xstate.error.actor.${REFRESH_ACTOR}`
const AFTER = 'xstate.after.'

/** What the client's refresh actor throws when the server refuses the refresh token. */
export const REJECTED_FAILURE = Object.freeze({
  rejected: true,
  error: Object.freeze({
    code: 'SESSION_EXPIRED',
    message: 'The server rejected the refresh token; sign in again.',
    status: 401,
  }),
})
/** What it throws for a failure worth retrying. */
export const TRANSIENT_FAILURE = Object.freeze({
  rejected: false,
  error: Object.freeze({
    code: 'REFRESH_FAILED',
    message: 'The token refresh failed with HTTP 503.',
    status: 503,
  }),
})

/** A stable name for a transition: its source state and its index among that state's. */
export function transitionKey(transition) {
  const index = [...transition.source.transitions.values()].flat().indexOf(transition)
  if (index < 0) throw new Error(`transition ${transition.eventType} not found in its source`)
  return `${transition.source.id}:${index}`
}

function guardName(guard) {
  if (guard === undefined) return undefined
  if (typeof guard === 'string') return guard
  return typeof guard.type === 'string' ? guard.type : 'inline'
}

/** `auth.refreshing.requesting ─xstate.error.actor.refresh [isRefreshRejected]→ auth.expired` */
export function describeTransition(transition) {
  const guard = guardName(transition.guard)
  const target = transition.target
    ? transition.target.map((node) => node.id).join(', ')
    : '(stays, actions only)'
  return `${transition.source.id} ─${transition.eventType}${guard ? ` [${guard}]` : ''}→ ${target}${transition.reenter ? ' (re-entered)' : ''}`
}

/**
 * Every transition the machine declares, read from `toDirectedGraph` (one edge per target),
 * keyed like {@link transitionKey}.
 */
export function declaredTransitions(machine) {
  const found = new Map()
  const visit = (node) => {
    for (const edge of node.edges) {
      const key = transitionKey(edge.transition)
      if (!found.has(key)) found.set(key, { key, label: describeTransition(edge.transition) })
    }
    for (const child of node.children) visit(child)
  }
  visit(toDirectedGraph(machine))
  return [...found.values()]
}

/** A short, readable name for a model event. */
export function formatEvent(event) {
  switch (event.type) {
    case DONE:
      return 'refresh.done'
    case ERROR:
      return `refresh.error(${event.failure})`
    case 'TOKEN_REJECTED':
      return `TOKEN_REJECTED(${event.generation})`
    case 'NONCE_CHALLENGED':
      return `NONCE_CHALLENGED(${event.generation})`
    case 'REFRESH_ANSWERED':
      return 'REFRESH_ANSWERED(late)'
    case 'SESSION_SYNCED':
      return `SESSION_SYNCED(${event.signIn})`
    default:
      if (event.type.startsWith(AFTER)) {
        const [delay, ...state] = event.type.slice(AFTER.length).split('.')
        return `after.${delay}(${state.slice(1).join('.')})`
      }
      return event.type
  }
}

export function formatPath(events) {
  return events.length === 0 ? '(initial state)' : events.map(formatEvent).join(' → ')
}

function summariseActions(actions) {
  const emitted = []
  let spawned
  let stopped = false
  let abandoned = false
  for (const action of actions) {
    if (action.type === 'xstate.emit') emitted.push(action.params.event)
    if (action.type === 'xstate.spawnChild' && action.params.id === REFRESH_ACTOR) {
      spawned = action.params.input
    }
    if (action.type === 'xstate.stopChild' && action.params?.id === REFRESH_ACTOR) stopped = true
    if (action.type === 'abandonRefresh') abandoned = true
  }
  return { emitted, spawned, stopped, abandoned }
}

/**
 * The refresh call on the wire, as the client's refresh owner keeps it (src/refresh.ts): an
 * attempt joins it while it is younger than the patience, else sends a new one (the old one
 * is cancelled); it lives on through timeouts and giving up; its result ends it, and so does
 * a session that ends (`abandonRefresh`). `call.id` counts the calls sent.
 */
function nextCall(call, actions, event, now, generation, sent) {
  let current = call
  if (actions.abandoned) current = null
  const settled = event.type === DONE || event.type === ERROR || event.type === 'REFRESH_ANSWERED'
  if (settled) current = null
  let change = settled
    ? { ended: call?.id ?? 0 }
    : actions.abandoned && call
      ? { ended: call.id }
      : {}
  if (actions.spawned) {
    if (current && now - current.sentAt < MODEL_PATIENCE) change = { ...change, joined: current.id }
    else {
      const id = sent + 1
      change = { ...change, sent: id, ...(current ? { superseded: current.id } : {}) }
      current = { id, sentAt: now, generation }
    }
  }
  return { call: current, change }
}

/**
 * The model of one profile:
 * - `'machine'`: every event the statechart accepts, the way any embedder could send it;
 * - `'client'`: only what `createAuthClient` can be made to send by an app, a server and
 *   another tab (e.g. `TOKEN_NEEDED` only while refreshing or once the token has expired on
 *   the client's clock, `TOKEN_REJECTED` only for a generation the client has had).
 *   `NONCE_CHALLENGED` (a DPoP server asking for a nonce) only with `dpop`: a Bearer client
 *   is never challenged.
 */
export function createAuthModel({
  configureAuthMachine,
  profile = 'machine',
  crossTab = true,
  dpop = false,
}) {
  const client = profile === 'client'
  const clock = { now: MODEL_START }
  const machine = configureAuthMachine({
    ...MODEL_TIMING,
    random: MODEL_RANDOM,
    now: () => clock.now,
  })

  // A new sign-in gets a new id; a refresh (here or in another tab) keeps the current one.
  const session = (state, seq, id = `signin-${seq}`) => ({
    accessToken: `access-${seq}`,
    refreshToken: `refresh-${seq}`,
    obtainedAt: state.now,
    expiresAt: state.now + ACCESS_TTL_SECONDS * 1000,
    id,
  })
  const refreshed = (state, seq) => session(state, seq, state.snapshot.context.session?.id)
  const request = (state, seq, kind) => ({
    id: `q${seq}`,
    method: 'GET',
    url: `/api/${kind}/q${seq}`,
    enqueuedAt: state.now,
  })

  /** The machine event a model event stands for, in `state` (`null` for the clock). */
  function resolve(state, event, seq) {
    const { context } = state.snapshot
    switch (event.type) {
      case SLEEP:
        return null
      case 'LOGIN':
        return { type: event.type, session: session(state, seq) }
      case 'SESSION_SYNCED':
        return {
          type: event.type,
          session: event.signIn === 'same' ? refreshed(state, seq) : session(state, seq),
        }
      case 'TOKEN_NEEDED':
        return { type: 'TOKEN_NEEDED', request: request(state, seq, 'needed') }
      case 'TOKEN_REJECTED': {
        const held = heldGeneration(state, event.generation)
        return {
          type: 'TOKEN_REJECTED',
          request: request(state, seq, 'probe'),
          generation: held?.generation ?? context.generation,
          epoch: held?.epoch ?? context.epoch,
        }
      }
      case 'NONCE_CHALLENGED': {
        const held = heldGeneration(state, event.generation)
        return {
          type: 'NONCE_CHALLENGED',
          request: request(state, seq, 'nonce'),
          epoch: held?.epoch ?? context.epoch,
        }
      }
      case 'RESTORED':
        return { type: 'RESTORED', session: session(state, seq) }
      case 'REFRESH_ANSWERED':
        return {
          type: 'REFRESH_ANSWERED',
          session: refreshed(state, seq),
          generation: state.call?.generation ?? context.generation,
        }
      case 'REQUEST_ABORTED':
        return { type: 'REQUEST_ABORTED', id: context.queue[0]?.id ?? '' }
      case DONE:
        return { type: DONE, output: refreshed(state, seq) }
      case ERROR:
        return {
          type: ERROR,
          error: event.failure === 'rejected' ? REJECTED_FAILURE : TRANSIENT_FAILURE,
        }
      default:
        return { type: event.type }
    }
  }

  /**
   * The token generation a 401 is for: the current one, the one before it in this session,
   * or the last one of an earlier session (another epoch). `undefined` if there is none.
   */
  function heldGeneration(state, kind) {
    const { context } = state.snapshot
    if (kind === 'current') return { generation: context.generation, epoch: context.epoch }
    const earlier = state.held.filter((h) => h.generation < context.generation)
    if (kind === 'older') {
      const previous = earlier.at(-1)
      return previous &&
        previous.epoch === context.epoch &&
        previous.generation === context.generation - 1
        ? previous
        : undefined
    }
    return earlier.filter((h) => h.epoch !== context.epoch).at(-1)
  }

  /** When an event happens: a timer at its due time, anything else now. */
  const timeOf = (state, event) =>
    event.type.startsWith(AFTER) ? (state.timers[event.type] ?? state.now) : state.now

  function takenBy(state, event) {
    const machineEvent = resolve(state, event, state.seq + 1)
    if (!machineEvent) return []
    clock.now = timeOf(state, event)
    return machine.getTransitionData(state.snapshot, machineEvent).map(transitionKey)
  }

  const isExpired = (state) => {
    const expiresAt = state.snapshot.context.session?.expiresAt
    return expiresAt !== undefined && state.now >= expiresAt
  }

  const [initialSnapshot] = initialTransition(machine)
  const initial = {
    snapshot: initialSnapshot,
    now: MODEL_START,
    timers: {},
    seq: 0,
    held: [],
    call: null,
    calls: 0,
    step: {
      event: null,
      machineEvent: null,
      took: 'init',
      transitions: [],
      delay: 0,
      delta: 0,
      emitted: [],
      spawned: undefined,
      stopped: false,
      abandoned: false,
      call: {},
    },
  }

  /** Applies a model event: the model's own `transition`. */
  function step(state, event) {
    const seq = state.seq + 1
    if (event.type === SLEEP) {
      const delta = state.snapshot.context.session.expiresAt - state.now
      const timers = Object.fromEntries(
        Object.entries(state.timers).map(([id, at]) => [id, at + delta]),
      )
      return {
        ...state,
        now: state.now + delta,
        timers,
        seq,
        step: {
          event,
          machineEvent: null,
          took: SLEEP,
          transitions: [],
          delay: 0,
          delta,
          emitted: [],
          spawned: undefined,
          stopped: false,
          abandoned: false,
          call: {},
        },
      }
    }
    const now = timeOf(state, event)
    const machineEvent = resolve(state, event, seq)
    clock.now = now
    const transitions = machine.getTransitionData(state.snapshot, machineEvent).map(transitionKey)
    const [snapshot, actions] = machineTransition(machine, state.snapshot, machineEvent)
    const timers = { ...state.timers }
    // A delivered timer is gone; the actions may arm it again (a re-entered state).
    delete timers[event.type]
    for (const action of actions) {
      if (action.type === 'xstate.raise' && typeof action.params.delay === 'number') {
        timers[action.params.id] = now + action.params.delay
      }
      if (action.type === 'xstate.cancel') delete timers[action.params.sendId]
    }
    const summary = summariseActions(actions)
    const { call, change } = nextCall(
      state.call,
      summary,
      machineEvent,
      now,
      state.snapshot.context.generation,
      state.calls,
    )
    const { context } = snapshot
    const last = state.held.at(-1)
    const held =
      context.session && last?.generation !== context.generation
        ? [...state.held, { generation: context.generation, epoch: context.epoch }]
        : state.held
    return {
      snapshot,
      now,
      timers,
      seq,
      held,
      call,
      calls: change.sent ?? state.calls,
      step: {
        event,
        machineEvent,
        took: transitions.join(' + ') || 'none',
        transitions,
        delay: now - state.now,
        delta: 0,
        ...summary,
        call: change,
      },
    }
  }

  /** The model events worth sending in `state`: producible, and taking a transition. */
  function events(state) {
    const { snapshot } = state
    const { context } = snapshot
    const authenticated = snapshot.matches('authenticated')
    const refreshing = snapshot.matches('refreshing')
    const signedIn = authenticated || refreshing
    const expired = isExpired(state)
    const candidates = [{ type: 'LOGIN' }, { type: 'LOGOUT' }, { type: 'WAKE' }]
    // The stored session arrives once, at start-up, before anything else happened.
    if (!client || (state.seq === 0 && context.epoch === 0)) candidates.push({ type: 'RESTORED' })
    // The client asks for a token only while refreshing or once its token has expired.
    if (!client || refreshing || (authenticated && expired))
      candidates.push({ type: 'TOKEN_NEEDED' })
    // A 401 needs a request that carried a token of that generation.
    if (!client || signedIn) candidates.push({ type: 'TOKEN_REJECTED', generation: 'current' })
    // The client replays a stale 401 at once, which asks for a token: not once it expired.
    if (authenticated && heldGeneration(state, 'older') && !(client && expired)) {
      candidates.push({ type: 'TOKEN_REJECTED', generation: 'older' })
    }
    if (heldGeneration(state, 'otherEpoch')) {
      candidates.push({ type: 'TOKEN_REJECTED', generation: 'otherEpoch' })
    }
    // A nonce challenge answers a request that carried a token: one of this session, or of
    // one that has ended since (then it is not sent again). The client sends it again at
    // once while its token is usable, which asks nothing of the machine: not once expired.
    if (!client || dpop) {
      if (!client || refreshing || (authenticated && !expired)) {
        candidates.push({ type: 'NONCE_CHALLENGED', generation: 'current' })
      }
      if (heldGeneration(state, 'otherEpoch')) {
        candidates.push({ type: 'NONCE_CHALLENGED', generation: 'otherEpoch' })
      }
    }
    if (context.queue.length > 0) candidates.push({ type: 'REQUEST_ABORTED' })
    if (!client || crossTab) {
      candidates.push(
        { type: 'SESSION_SYNCED', signIn: 'same' },
        { type: 'SESSION_SYNCED', signIn: 'other' },
        { type: 'SESSION_ENDED' },
      )
    }
    if (snapshot.children[REFRESH_ACTOR]) {
      candidates.push(
        { type: DONE },
        { type: ERROR, failure: 'rejected' },
        { type: ERROR, failure: 'transient' },
      )
    }
    // A call nobody waits for any more (timed out, or given up) can still answer.
    if (!client || (state.call && !snapshot.children[REFRESH_ACTOR])) {
      candidates.push({ type: 'REFRESH_ANSWERED' })
    }
    for (const id of Object.keys(state.timers).sort()) candidates.push({ type: id })
    const offered = candidates.filter((event) => takenBy(state, event).length > 0)
    if (authenticated && !expired && context.session?.expiresAt !== undefined) {
      offered.push({ type: SLEEP })
    }
    return offered
  }

  /** The facts that decide what events do next, and the transition that led here. */
  function serialize(state) {
    const { snapshot } = state
    const { context } = snapshot
    const timers = Object.keys(state.timers)
      .sort()
      .map((id) => [id, takenBy(state, { type: id })])
    const call = state.call
      ? [
          state.now - state.call.sentAt < MODEL_PATIENCE ? 'patient' : 'old',
          state.call.generation === context.generation ? 'current' : 'stale',
        ]
      : 'none'
    return JSON.stringify([
      snapshot.value,
      context.session ? 1 : 0,
      context.queue.length > 0 ? 1 : 0,
      context.attempt,
      isExpired(state) ? 1 : 0,
      Math.min(context.generation, 2),
      context.epoch === 0 ? 0 : 1,
      heldGeneration(state, 'older') ? 1 : 0,
      heldGeneration(state, 'otherEpoch') ? 1 : 0,
      call,
      timers,
      state.step.took,
    ])
  }

  /** Runs `modelEvents` from the initial state; every step with its states before and after. */
  function replay(modelEvents) {
    const steps = []
    let state = initial
    for (const event of modelEvents) {
      const offered = events(state).map((e) => JSON.stringify(e))
      if (!offered.includes(JSON.stringify(event))) {
        throw new Error(`${formatEvent(event)} is not offered in ${serialize(state)}`)
      }
      const next = step(state, event)
      steps.push({ ...next.step, before: state, after: next })
      state = next
    }
    return steps
  }

  /** Shortest paths to every (abstract state, incoming transition), minus prefixes. */
  function paths() {
    const logic = {
      transition: (state, event) => step(state, event),
      getInitialSnapshot: () => initial,
      getPersistedSnapshot: (state) => state,
    }
    const found = getShortestPaths(logic, {
      fromState: initial,
      events,
      serializeState: serialize,
      serializeEvent: (event) => JSON.stringify(event),
    })
    const sequences = found
      .map((path) => {
        const sequence = path.steps.slice(1).map((s) => s.event)
        // The abstraction must decide the outcome: replaying the events from the start has to
        // reach the same abstract state, whatever concrete state the search kept.
        const reached = replay(sequence).at(-1)?.after ?? initial
        if (serialize(reached) !== serialize(path.state)) {
          throw new Error(
            `the model abstraction is too coarse: ${formatPath(sequence)} reaches ${serialize(reached)}, expected ${serialize(path.state)}`,
          )
        }
        return sequence
      })
      .sort((a, b) => b.length - a.length)
    const kept = []
    for (const sequence of sequences) {
      const key = sequence.map((e) => JSON.stringify(e))
      const isPrefix = kept.some(
        (other) => other.key.length >= key.length && key.every((e, i) => e === other.key[i]),
      )
      if (!isPrefix) kept.push({ key, sequence })
    }
    return kept
      .map(({ sequence }) => {
        const steps = replay(sequence)
        return { name: formatPath(sequence), events: sequence, steps }
      })
      .sort((a, b) => a.events.length - b.events.length || (a.name < b.name ? -1 : 1))
  }

  return { machine, profile, initial, step, events, serialize, replay, paths }
}

/** The transitions a set of paths walks, by key. */
export function walkedTransitions(paths) {
  const walked = new Set()
  for (const path of paths)
    for (const s of path.steps) for (const key of s.transitions) walked.add(key)
  return walked
}
