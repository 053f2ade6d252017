import type { ActorRefLike, InspectionEvent, Observer } from 'xstate'

/**
 * What inspectors receive is built from an allow-list, never copied and then scrubbed: every
 * object handed out is a new one holding only fields known to be safe, and every actor ref is
 * a small stand-in (`sessionId`, `id`, definition, parent stand-in, projected snapshot) with
 * no path back to the real actor, its input, its parent's context or its children. So no
 * walk, `util.inspect` or serializer can reach a token, whatever depth it goes to.
 */

type Fields = Record<string, unknown>

/** What stands in an inspector's copy where a token was. */
const REDACTED = '[redacted]'

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null

const pickNumber = (value: unknown) => (typeof value === 'number' ? value : undefined)
const pickString = (value: unknown) => (typeof value === 'string' ? value : undefined)

function definedOnly(fields: Fields): Fields {
  const out: Fields = {}
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value
  return out
}

/** A session with its tokens replaced: the shape stays, so tools can still draw it. */
function projectSession(session: unknown): Fields | null | undefined {
  if (session === null) return null
  if (!isObject(session)) return undefined
  return definedOnly({
    accessToken: REDACTED,
    refreshToken: session.refreshToken === undefined ? undefined : REDACTED,
    expiresAt: pickNumber(session.expiresAt),
    obtainedAt: pickNumber(session.obtainedAt),
  })
}

function projectRequest(request: unknown): Fields | undefined {
  if (!isObject(request)) return undefined
  return definedOnly({
    id: pickString(request.id),
    method: pickString(request.method),
    url: pickString(request.url),
    enqueuedAt: pickNumber(request.enqueuedAt),
  })
}

function projectErrorInfo(error: unknown): Fields | null | undefined {
  if (error === null) return null
  if (!isObject(error)) return undefined
  return definedOnly({
    code: pickString(error.code),
    message: pickString(error.message),
    status: pickNumber(error.status),
  })
}

/** A refresh failure as the machine reads it, or just the kind of any other thrown value. */
function projectFailure(error: unknown): Fields | undefined {
  if (!isObject(error)) return undefined
  if (typeof error.rejected === 'boolean') {
    return { rejected: error.rejected, error: projectErrorInfo(error.error) }
  }
  return { name: error instanceof Error ? error.name : typeof error }
}

function projectContext(context: unknown): Fields | undefined {
  if (!isObject(context)) return undefined
  return definedOnly({
    session: projectSession(context.session),
    generation: pickNumber(context.generation),
    epoch: pickNumber(context.epoch),
    queue: Array.isArray(context.queue) ? context.queue.map(projectRequest) : undefined,
    attempt: pickNumber(context.attempt),
    error: projectErrorInfo(context.error),
  })
}

/** A machine event with only its known, token-free fields. */
export function projectEvent(event: unknown): Fields {
  if (!isObject(event)) return { type: 'unknown' }
  const type = pickString(event.type) ?? 'unknown'
  return definedOnly({
    type,
    session: 'session' in event ? projectSession(event.session) : undefined,
    request: projectRequest(event.request),
    generation: pickNumber(event.generation),
    epoch: pickNumber(event.epoch),
    id: pickString(event.id),
    // xstate.done.actor.* carries the refresh result, xstate.error.actor.* its failure.
    output: 'output' in event ? projectSession(event.output) : undefined,
    error: 'error' in event ? projectFailure(event.error) : undefined,
  })
}

/** Snapshots of the auth machine and of the refresh actor, projected. */
export function projectSnapshot(snapshot: unknown): Fields | undefined {
  if (!isObject(snapshot)) return undefined
  return definedOnly({
    status: pickString(snapshot.status),
    value:
      isObject(snapshot.value) || typeof snapshot.value === 'string' ? snapshot.value : undefined,
    context: projectContext(snapshot.context),
    // A promise actor's result is the new session; its input names a generation, no token.
    output: 'output' in snapshot ? projectSession(snapshot.output) : undefined,
    error: 'error' in snapshot ? projectFailure(snapshot.error) : undefined,
    input: isObject(snapshot.input)
      ? definedOnly({
          generation: pickNumber(snapshot.input.generation),
          attempt: pickNumber(snapshot.input.attempt),
        })
      : undefined,
  })
}

/** A stand-in for an actor ref: what inspectors read of one, and nothing else. */
export interface InspectedRef {
  readonly id: string
  readonly sessionId: string
  readonly logic: { readonly config: unknown }
  readonly _parent: InspectedRef | undefined
  getSnapshot(): Fields | undefined
}

function createStandIns() {
  const made = new WeakMap<ActorRefLike, InspectedRef>()
  const standIn = (ref: ActorRefLike): InspectedRef => {
    const known = made.get(ref)
    if (known) return known
    const {
      id,
      _parent: parent,
      logic,
    } = ref as ActorRefLike & {
      id: string
      _parent?: ActorRefLike
      logic?: { config?: unknown }
    }
    const config = logic?.config
    const created: InspectedRef = {
      id,
      sessionId: ref.sessionId,
      // The machine's definition (state names, transitions, named actions and guards); a
      // promise actor's "config" is its function, which inspectors print by name only.
      logic: { config: typeof config === 'function' ? { id } : config },
      _parent: parent ? standIn(parent) : undefined,
      getSnapshot: () => projectSnapshot(ref.getSnapshot()),
    }
    made.set(ref, created)
    return created
  }
  return standIn
}

interface TransitionLike {
  source?: { id?: unknown }
  target?: readonly { id?: unknown }[]
  eventType?: unknown
  reenter?: unknown
  guard?: unknown
}

/**
 * A transition's guard by name (`'isOtherEpoch'`), so an inspector can tell two branches of
 * one event apart; never its parameters, and never a function.
 */
function guardName(guard: unknown): string | undefined {
  return pickString(typeof guard === 'object' && guard ? (guard as { type?: unknown }).type : guard)
}

function projectTransition(transition: TransitionLike): Fields {
  return {
    source: { id: pickString(transition.source?.id) },
    target: transition.target?.map((node) => ({ id: pickString(node.id) })),
    eventType: pickString(transition.eventType),
    reenter: transition.reenter === true,
    guard: guardName(transition.guard),
  }
}

/**
 * Wraps the `inspect` option: every inspection event is projected before it reaches the
 * app's inspector (a function, or an observer such as `createBrowserInspector().inspect`).
 */
export function createInspection(
  inspector: ((event: InspectionEvent) => void) | Observer<InspectionEvent> | undefined,
): ((event: InspectionEvent) => void) | undefined {
  const deliver = typeof inspector === 'function' ? inspector : inspector?.next?.bind(inspector)
  if (!deliver) return undefined
  const standIn = createStandIns()
  return (event) => {
    const base = {
      type: event.type,
      rootId: event.rootId,
      actorRef: standIn(event.actorRef),
    }
    let projected: Fields
    switch (event.type) {
      case '@xstate.event':
        projected = {
          ...base,
          event: projectEvent(event.event),
          sourceRef: event.sourceRef ? standIn(event.sourceRef) : undefined,
        }
        break
      case '@xstate.snapshot':
        projected = {
          ...base,
          event: projectEvent(event.event),
          snapshot: projectSnapshot(event.snapshot),
        }
        break
      case '@xstate.microstep':
        projected = {
          ...base,
          event: projectEvent(event.event),
          snapshot: projectSnapshot(event.snapshot),
          _transitions: event._transitions.map((t) => projectTransition(t as TransitionLike)),
        }
        break
      case '@xstate.action':
        // Action parameters may carry a session (e.g. commitRefresh): only the name goes out.
        projected = { ...base, action: { type: pickString(event.action.type) } }
        break
      default:
        projected = base
    }
    // The stand-ins have the members inspectors use; the rest of an actor ref is withheld.
    deliver(projected as unknown as InspectionEvent)
  }
}
