// The statechart as data, read from the running machine's own definition (xstate/graph), so
// the drawing can never drift from the code: add a state or a transition and it appears.
import type { AnyStateMachine } from 'xstate'
import { type DirectedGraphEdge, type DirectedGraphNode, toDirectedGraph } from 'xstate/graph'

/** One state node: its path (`refreshing.requesting`), children and targetless transitions. */
export interface StateModel {
  /** XState id, e.g. `auth.refreshing.requesting`. */
  id: string
  /** Dotted path below the machine, e.g. `refreshing.requesting`; `''` for the machine. */
  path: string
  /** The node's own key, e.g. `requesting`; the machine id for the root. */
  key: string
  parentId: string | null
  children: StateModel[]
  /** The id of the initial child, for compound states. */
  initialId: string | null
  /** Transitions without a target (actions only), e.g. `TOKEN_NEEDED` enqueues in `refreshing`. */
  internal: string[]
  /**
   * Transitions from the state to itself: it is left and entered again (timers restart, a
   * compound state starts over at its initial child), e.g. `LOGIN [isNewSession]` in
   * `authenticated`. Listed inside the state: drawn as loops, their labels sat on other edges.
   */
  reentries: string[]
  /** What each `[else]` among `internal` and `reentries` stands for, by label. */
  notes: Record<string, string>
  /** Ids of invoked actors, e.g. `refresh`. */
  invokes: string[]
}

/** All transitions between one source and one target, drawn as a single edge. */
export interface EdgeModel {
  /** `source->target` with state ids, stable across renders. */
  id: string
  source: string
  target: string
  /** One label per transition: event (readable), plus `[guard]` or `[else]`. */
  labels: string[]
  /** What each `[else]` among `labels` stands for, by label (see {@link elseNote}). */
  notes: Record<string, string>
}

export interface MachineModel {
  root: StateModel
  states: Map<string, StateModel>
  edges: EdgeModel[]
}

/** `xstate.after.refreshDue.auth.authenticated.fresh` → `after refreshDue`, and so on. */
export function eventLabel(eventType: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType)
  if (after) return `after ${after[1]}`
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType)
  if (done) return `${done[1]} done`
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType)
  if (error) return `${error[1]} error`
  return eventType
}

/** A guard's name as the chart shows it; `undefined` for an unguarded transition. */
export function guardName(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined
  if (typeof guard === 'string') return guard
  if (typeof guard === 'function') return guard.name || 'guard'
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') {
    return (guard as { type: string }).type
  }
  return 'guard'
}

/**
 * `[else]` spelled out: the candidates for one event are tried in order, and the unguarded
 * one after guarded ones is taken when none of their guards holds.
 */
export function elseNote(label: string, guards: readonly string[]): string {
  const which =
    guards.length === 1 ? `${guards[0]} does not hold` : `none of ${guards.join(', ')} holds`
  return `${label}: taken when ${which}`
}

/**
 * The label a transition is drawn with: its event (readable), plus `[guard]`, or `[else]` when
 * it is unguarded and guarded candidates for the same event come before it (`guardsBefore`).
 */
export function transitionLabel(
  eventType: string,
  guard: string | undefined,
  guardsBefore: readonly string[],
): string {
  const branch = guard ? ` [${guard}]` : guardsBefore.length > 0 ? ' [else]' : ''
  return `${eventLabel(eventType)}${branch}`
}

/**
 * The label of a transition the machine took, as {@link machineModel} drew it, from what the
 * client's inspection tells: its source, event and guard name. A taken transition without a
 * guard is its event's `[else]` when other candidates of its source state have guards.
 */
export function takenLabel(
  machine: AnyStateMachine,
  sourceId: string,
  eventType: string,
  guard: string | undefined,
): string {
  if (guard) return transitionLabel(eventType, guard, [])
  const candidates = machine.getStateNodeById(sourceId).transitions.get(eventType) ?? []
  const guards = candidates.flatMap((candidate) => {
    const name = guardName(candidate.guard)
    return name ? [name] : []
  })
  return transitionLabel(eventType, undefined, guards)
}

function pathOf(id: string, machineId: string): string {
  return id === machineId ? '' : id.slice(machineId.length + 1)
}

/** The machine's states and transitions, with transitions between the same pair merged. */
export function machineModel(machine: AnyStateMachine): MachineModel {
  const graph = toDirectedGraph(machine)
  const machineId = graph.id
  const states = new Map<string, StateModel>()
  const edges = new Map<string, EdgeModel>()

  function visit(node: DirectedGraphNode, parentId: string | null): StateModel {
    const { stateNode } = node
    const model: StateModel = {
      id: node.id,
      path: pathOf(node.id, machineId),
      key: parentId === null ? machineId : stateNode.key,
      parentId,
      children: [],
      initialId: stateNode.initial?.target?.[0]?.id ?? null,
      internal: [],
      reentries: [],
      notes: {},
      invokes: stateNode.invoke.map((invoke) => invoke.id),
    }
    states.set(node.id, model)
    addEdges(model, node.edges)
    model.children = node.children.map((child) => visit(child, node.id))
    return model
  }

  function addEdges(state: StateModel, stateEdges: DirectedGraphEdge[]): void {
    // Candidates for one event are tried in order: an unguarded one after guarded ones is
    // the "else" branch.
    const guardsBefore = new Map<string, string[]>()
    for (const edge of stateEdges) {
      const { transition } = edge
      const event = transition.eventType
      const guard = guardName(transition.guard)
      const guards = guardsBefore.get(event) ?? []
      if (guard) guardsBefore.set(event, [...guards, guard])
      const label = transitionLabel(event, guard, guards)
      const note = !guard && guards.length > 0 ? { [label]: elseNote(label, guards) } : {}
      const inside = !transition.target?.length
        ? state.internal
        : edge.target.id === state.id
          ? state.reentries
          : null
      if (inside) {
        if (!inside.includes(label)) inside.push(label)
        Object.assign(state.notes, note)
        continue
      }
      const id = `${edge.source.id}->${edge.target.id}`
      const existing = edges.get(id)
      if (existing) {
        if (!existing.labels.includes(label)) existing.labels.push(label)
        Object.assign(existing.notes, note)
      } else {
        edges.set(id, {
          id,
          source: edge.source.id,
          target: edge.target.id,
          labels: [label],
          notes: note,
        })
      }
    }
  }

  const root = visit(graph, null)
  return { root, states, edges: [...edges.values()] }
}

/**
 * The paths active in a state value: `{ refreshing: 'backoff' }` →
 * `['refreshing', 'refreshing.backoff']`.
 */
export function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value]
  if (typeof value !== 'object' || value === null) return []
  return Object.entries(value).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key
    return [path, ...activePaths(child, path)]
  })
}

/** The deepest active path, e.g. `refreshing.backoff`. */
export function stateValueText(value: unknown): string {
  const paths = activePaths(value)
  return paths.reduce((deepest, path) => (path.length > deepest.length ? path : deepest), '')
}
