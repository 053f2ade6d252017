// What happened, as the page shows it: the event log and the last transition taken. Built from
// the client's inspection events and emitted events, never from raw data: every line is
// composed from whitelisted fields (event type, method, URL path, generation, error code), so
// no token can reach the page through it.
import type { AuthEmitted } from 'auth-machine'
import type { InspectionEvent } from 'xstate'
import { auth, onInspection, onWarning } from './auth.js'
import { eventLabel, stateValueText, takenLabel } from './graph.js'
import { scrub } from './secrets.js'
import { createStore } from './store.js'

export type LogKind = 'event' | 'transition' | 'emitted' | 'control' | 'ok' | 'error' | 'warning'

export interface LogEntry {
  id: number
  at: number
  kind: LogKind
  text: string
  /** Consecutive identical lines are merged; this counts them. */
  count: number
}

const MAX_ENTRIES = 300
export const log = createStore<readonly LogEntry[]>([])
let nextId = 1

/** Appends a line (merged with the previous one when identical). */
export function addLog(kind: LogKind, text: string): void {
  const clean = scrub(text)
  const entries = log.get()
  const last = entries[entries.length - 1]
  if (last && last.kind === kind && last.text === clean) {
    log.set([...entries.slice(0, -1), { ...last, count: last.count + 1, at: Date.now() }])
    return
  }
  const next = [...entries, { id: nextId++, at: Date.now(), kind, text: clean, count: 1 }]
  log.set(next.length > MAX_ENTRIES ? next.slice(next.length - MAX_ENTRIES) : next)
}

export function clearLog(): void {
  log.set([])
}

/**
 * The last transition that changed state, as graph edge ids (`source->target`), and the last
 * transitions drawn inside their state, targetless or re-entering (`stateId` and the full
 * label of the candidate taken: event plus `[guard]` or `[else]`, as the chart writes it).
 * Each has its own sequence number so the page can replay an animation when the same
 * transition happens again.
 */
export interface LastTransition {
  seq: number
  edges: string[]
  internalSeq: number
  internal: { stateId: string; label: string }[]
}

export const lastTransition = createStore<LastTransition>({
  seq: 0,
  edges: [],
  internalSeq: 0,
  internal: [],
})

/** A transition as the client's inspection projects it: ids, event type and guard name. */
interface TransitionLike {
  source?: { id?: unknown }
  target?: readonly { id?: unknown }[]
  eventType?: unknown
  guard?: unknown
}

function isRoot(event: InspectionEvent): boolean {
  // By session id: the client may hand inspectors a (redacting) proxy of the actor.
  return event.actorRef.sessionId === auth.actor.sessionId
}

function field(object: unknown, key: string): unknown {
  return typeof object === 'object' && object !== null
    ? (object as Record<string, unknown>)[key]
    : undefined
}

/** A short, token-free description of a machine event. */
function describeEvent(event: { type: string }): string {
  const request = field(event, 'request')
  const method = field(request, 'method')
  const url = field(request, 'url')
  const parts = [eventLabel(event.type)]
  if (typeof method === 'string' && typeof url === 'string') parts.push(`${method} ${url}`)
  const generation = field(event, 'generation')
  if (typeof generation === 'number') parts.push(`gen ${generation}`)
  const failure = field(field(event, 'error'), 'error')
  const code = field(failure, 'code')
  const status = field(failure, 'status')
  if (typeof code === 'string') parts.push(typeof status === 'number' ? `${code} ${status}` : code)
  if (event.type === 'LOGIN' || event.type === 'SESSION_SYNCED') parts.push('(tokens not shown)')
  return parts.join(' · ')
}

let previousState = ''

// Emitted events happen inside a step, before its snapshot is reported: they are held until
// the step's line is logged, so the log reads "event → state" and then what it emitted.
const pendingEmitted: string[] = []
let flushScheduled = false

function flushEmitted(): void {
  flushScheduled = false
  for (const text of pendingEmitted.splice(0)) addLog('emitted', text)
}

function holdEmitted(text: string): void {
  pendingEmitted.push(text)
  if (!flushScheduled) {
    flushScheduled = true
    queueMicrotask(flushEmitted)
  }
}

function recordInspection(event: InspectionEvent): void {
  if (!isRoot(event)) return
  if (event.type === '@xstate.snapshot') {
    const state = stateValueText(field(event.snapshot, 'value'))
    const changed = state !== previousState
    previousState = state
    const type = event.event.type
    if (type === 'xstate.init' || type === 'xstate.stop') return
    const text = describeEvent(event.event)
    const emitted = pendingEmitted.splice(0)
    if (changed) {
      addLog('transition', `${text} → ${state}`)
      for (const line of emitted) addLog('emitted', line)
    } else {
      // Same state: one line, so a burst of identical events collapses into "×n".
      addLog('event', emitted.length > 0 ? `${text} ⇒ ${emitted.join(' · ')}` : text)
    }
  }
  if (event.type === '@xstate.microstep') {
    recordStep((event as { _transitions?: readonly TransitionLike[] })._transitions ?? [])
  }
}

/**
 * Records the transitions a microstep took. Two branches of one event can differ only in their
 * guard (`TOKEN_REJECTED [isOtherEpoch]` rejects the request, `TOKEN_REJECTED [else]` queues it,
 * and neither leaves `refreshing`): the label recorded is the branch's, as the chart writes it.
 */
function recordStep(transitions: readonly TransitionLike[]): void {
  const edges: string[] = []
  const internal: LastTransition['internal'] = []
  for (const transition of transitions) {
    const source = transition.source?.id
    if (typeof source !== 'string') continue
    const targets = (transition.target ?? []).flatMap((t) =>
      typeof t.id === 'string' ? [t.id] : [],
    )
    const inside = targets.length === 0 || (targets.length === 1 && targets[0] === source)
    const { eventType } = transition
    if (inside && typeof eventType === 'string') {
      // Which candidate was taken, not only its event: `TOKEN_REJECTED [else]` (enqueued)
      // and `TOKEN_REJECTED [isOtherEpoch]` (rejected) are different branches.
      const guard = typeof transition.guard === 'string' ? transition.guard : undefined
      internal.push({
        stateId: source,
        label: takenLabel(auth.actor.logic, source, eventType, guard),
      })
    }
    for (const target of targets) edges.push(`${source}->${target}`)
  }
  const last = lastTransition.get()
  if (edges.length > 0 || internal.length > 0) {
    lastTransition.set({
      ...last,
      ...(edges.length > 0 ? { seq: last.seq + 1, edges } : {}),
      ...(internal.length > 0 ? { internalSeq: last.internalSeq + 1, internal } : {}),
    })
  }
}

/** A line for an emitted event; none for a release or rejection of no request (an empty queue). */
function describeEmitted(event: AuthEmitted): string | undefined {
  switch (event.type) {
    case 'refreshed':
      return `emit refreshed · gen ${event.generation}`
    case 'requestsReleased':
      if (event.ids.length === 0) return undefined
      return `emit requestsReleased · ${event.ids.length} request${event.ids.length === 1 ? '' : 's'}`
    case 'requestsRejected':
      if (event.ids.length === 0) return undefined
      return `emit requestsRejected · ${event.ids.length} · ${event.error.code}`
    case 'sessionExpired':
      return `emit sessionExpired · ${event.error.code}`
    case 'loggedOut':
      return 'emit loggedOut'
  }
}

/** Starts recording; call once. */
export function startRecording(): () => void {
  previousState = stateValueText(auth.actor.getSnapshot().value)
  addLog('transition', `client ready · ${previousState}`)
  const stopInspection = onInspection(recordInspection)
  const emitted = auth.actor.on('*', (event) => {
    const text = describeEmitted(event)
    if (text) holdEmitted(text)
  })
  const stopWarnings = onWarning((message) => addLog('warning', message))
  return () => {
    stopInspection()
    emitted.unsubscribe()
    stopWarnings()
  }
}
