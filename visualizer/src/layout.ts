// Automatic layout of the machine model with ELK (layered, hierarchical): compound states
// become nested nodes, transitions become routed edges with their labels placed by ELK.
import ELK, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js'
import type { EdgeModel, MachineModel, StateModel } from './graph.js'

/** Measures `text` in pixels for the given CSS font. */
export type Measure = (text: string, font: string) => number

export const FONTS = {
  title: '600 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  detail: '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
  edge: '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
}

const LINE = 15
const TITLE = 30
const PAD = 14
const INITIAL = 10
/** Distance between the ends of edges that enter one compound state. */
const ENTRY_SPACING = 24

export interface PlacedState {
  model: StateModel
  x: number
  y: number
  width: number
  height: number
  compound: boolean
  /** Text lines drawn under the title: invoked actors, targetless transitions, re-entries. */
  details: string[]
}

export interface PlacedEdge {
  model: EdgeModel
  /** SVG path data of the routed edge. */
  d: string
  /** The last two points, for the arrowhead direction. */
  end: { x: number; y: number; fromX: number; fromY: number }
  labels: { x: number; y: number; width: number; height: number; lines: string[] }[]
}

export interface PlacedInitial {
  parentId: string
  x: number
  y: number
  d: string
  end: { x: number; y: number; fromX: number; fromY: number }
}

export interface Layout {
  width: number
  height: number
  states: PlacedState[]
  edges: PlacedEdge[]
  initials: PlacedInitial[]
}

/** Marks a detail line: a transition that stays in the state, or one that re-enters it. */
export const STAYS = '↺ '
export const REENTERS = '⟳ '

function detailsOf(state: StateModel): string[] {
  return [
    ...state.invokes.map((id) => `invoke ${id}`),
    ...state.internal.map((t) => `${STAYS}${t}`),
    ...state.reentries.map((t) => `${REENTERS}${t}`),
  ]
}

function ancestors(states: MachineModel['states'], id: string): string[] {
  const chain: string[] = []
  for (let at = states.get(id)?.parentId; at; at = states.get(at)?.parentId) chain.push(at)
  return chain
}

/** The graph node that must hold an edge: the nearest common ancestor of both ends' parents. */
function containerOf(model: MachineModel, source: string, target: string): string {
  const up = ancestors(model.states, target)
  return ancestors(model.states, source).find((id) => up.includes(id)) ?? model.root.id
}

function pathData(points: { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
}

/** Lays the machine out; all coordinates in the result are absolute. */
export async function layoutMachine(model: MachineModel, measure: Measure): Promise<Layout> {
  const elkNodes = new Map<string, ElkNode>()
  const details = new Map<string, string[]>()

  function toElk(state: StateModel): ElkNode {
    const lines = detailsOf(state)
    details.set(state.id, lines)
    const textWidth = Math.max(
      measure(state.key, FONTS.title),
      ...lines.map((line) => measure(line, FONTS.detail)),
    )
    const node: ElkNode =
      state.children.length === 0
        ? {
            id: state.id,
            width: Math.max(116, textWidth + 2 * PAD),
            height: 36 + LINE * lines.length,
          }
        : {
            id: state.id,
            layoutOptions: {
              'elk.padding': `[top=${TITLE + LINE * lines.length + 8},left=${PAD},bottom=${PAD},right=${PAD}]`,
              'elk.nodeSize.minimum': `(${textWidth + 2 * PAD}, 40)`,
              'elk.nodeSize.constraints': 'MINIMUM_SIZE',
            },
            children: [],
            edges: [],
          }
    elkNodes.set(state.id, node)
    if (state.children.length > 0) {
      const initial = state.initialId
      if (initial) {
        node.children?.push({ id: `initial:${state.id}`, width: INITIAL, height: INITIAL })
      }
      for (const child of state.children) node.children?.push(toElk(child))
      if (initial) {
        node.edges?.push({
          id: `initial-edge:${state.id}`,
          sources: [`initial:${state.id}`],
          targets: [initial],
        })
      }
    }
    return node
  }

  const root = toElk(model.root)
  root.layoutOptions = {
    'elk.algorithm': 'layered',
    'elk.direction': 'RIGHT',
    'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
    'elk.edgeRouting': 'ORTHOGONAL',
    // Read left to right in the order the states are declared; back edges loop around.
    'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
    'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
    'elk.layered.edgeLabels.centerLabelPlacementStrategy': 'TAIL_LAYER',
    'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
    'elk.layered.spacing.nodeNodeBetweenLayers': '28',
    'elk.layered.spacing.edgeNodeBetweenLayers': '10',
    'elk.layered.spacing.edgeEdgeBetweenLayers': '6',
    'elk.spacing.nodeNode': '24',
    'elk.spacing.edgeNode': '10',
    'elk.spacing.edgeEdge': '6',
    'elk.spacing.edgeLabel': '3',
    'elk.padding': '[top=30,left=14,bottom=14,right=14]',
    'elk.json.shapeCoords': 'ROOT',
    'elk.json.edgeCoords': 'ROOT',
  }

  // Edges into a compound state end on its top border, each at a port of its own, above its
  // title and `↺` lines and so far from any child: without ports ELK let five of them end
  // 10 px apart on the left border next to whichever child sat there, and `LOGIN` seemed to
  // lead into `stale`.
  function entryPort(edgeId: string, target: string): string {
    const node = elkNodes.get(target)
    if (!node?.children) return target
    const port = `${edgeId}:in`
    node.ports = [
      ...(node.ports ?? []),
      { id: port, width: 0, height: 0, layoutOptions: { 'elk.port.side': 'NORTH' } },
    ]
    node.layoutOptions = {
      ...node.layoutOptions,
      'elk.portConstraints': 'FIXED_SIDE',
      'elk.spacing.portPort': String(ENTRY_SPACING),
    }
    return port
  }

  const edgeModels = new Map<string, EdgeModel>()
  model.edges.forEach((edge, index) => {
    const id = `edge-${index}`
    edgeModels.set(id, edge)
    // The guard goes on its own line: narrower labels keep the layers close together.
    const lines = edge.labels.flatMap((label) => {
      const at = label.indexOf(' [')
      return at === -1 ? [label] : [label.slice(0, at), `  ${label.slice(at + 1)}`]
    })
    const lineWidth = Math.max(...lines.map((line) => measure(line, FONTS.edge)))
    const elkEdge: ElkExtendedEdge = {
      id,
      sources: [edge.source],
      targets: [entryPort(id, edge.target)],
      labels: [
        {
          id: `${id}-label`,
          text: lines.join('\n'),
          width: lineWidth + 8,
          height: LINE * lines.length + 2,
          // On the edge, which runs through it: beside it, a label could sit as close to a
          // neighbouring edge as to its own.
          layoutOptions: { 'elk.edgeLabels.inline': 'true' },
        },
      ],
    }
    elkNodes.get(containerOf(model, edge.source, edge.target))?.edges?.push(elkEdge)
  })

  const elk = new ELK()
  const laid = await elk.layout(root)

  const states: PlacedState[] = []
  const edges: PlacedEdge[] = []
  const initials: PlacedInitial[] = []
  const initialBoxes = new Map<string, { x: number; y: number }>()

  function collect(node: ElkNode): void {
    const state = model.states.get(node.id)
    if (state && state !== model.root) {
      states.push({
        model: state,
        x: node.x ?? 0,
        y: node.y ?? 0,
        width: node.width ?? 0,
        height: node.height ?? 0,
        compound: state.children.length > 0,
        details: details.get(state.id) ?? [],
      })
    }
    if (node.id.startsWith('initial:')) {
      initialBoxes.set(node.id.slice('initial:'.length), { x: node.x ?? 0, y: node.y ?? 0 })
    }
    for (const edge of node.edges ?? []) {
      const points = (edge.sections ?? []).flatMap((section) => [
        section.startPoint,
        ...(section.bendPoints ?? []),
        section.endPoint,
      ])
      const last = points[points.length - 1]
      const before = points[points.length - 2]
      if (!last || !before) continue
      const end = { x: last.x, y: last.y, fromX: before.x, fromY: before.y }
      if (edge.id.startsWith('initial-edge:')) {
        initials.push({
          parentId: edge.id.slice('initial-edge:'.length),
          x: 0,
          y: 0,
          d: pathData(points),
          end,
        })
        continue
      }
      const edgeModel = edgeModels.get(edge.id)
      if (!edgeModel) continue
      edges.push({
        model: edgeModel,
        d: pathData(points),
        end,
        labels: (edge.labels ?? []).map((label) => ({
          x: label.x ?? 0,
          y: label.y ?? 0,
          width: label.width ?? 0,
          height: label.height ?? 0,
          lines: (label.text ?? '').split('\n'),
        })),
      })
    }
    for (const child of node.children ?? []) collect(child)
  }
  collect(laid)
  for (const initial of initials) {
    const box = initialBoxes.get(initial.parentId)
    if (box) {
      initial.x = box.x + INITIAL / 2
      initial.y = box.y + INITIAL / 2
    }
  }
  // Deeper states are drawn later, on top of their parents.
  states.sort((a, b) => a.model.path.split('.').length - b.model.path.split('.').length)
  return { width: laid.width ?? 0, height: laid.height ?? 0, states, edges, initials }
}
