import { useAuthSelector } from 'auth-machine/react'
import { Fragment, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react'
import { type LastTransition, lastTransition } from '../activity.js'
import { auth } from '../auth.js'
import { machineModel, stateValueText } from '../graph.js'
import { type Layout, layoutMachine, type Measure, REENTERS, STAYS } from '../layout.js'
import { toneOf } from '../tone.js'
import { useZoom, type Zoom } from '../zoom.js'
import { Legend } from './Legend.js'

const context2d = document.createElement('canvas').getContext('2d')

const measure: Measure = (text, font) => {
  if (!context2d) return text.length * 7
  context2d.font = font
  return Math.ceil(context2d.measureText(text).width)
}

function Arrow({
  end,
  className,
}: {
  end: { x: number; y: number; fromX: number; fromY: number }
  className: string
}) {
  const angle = Math.atan2(end.y - end.fromY, end.x - end.fromX)
  const size = 7
  const left = angle + Math.PI - 0.42
  const right = angle + Math.PI + 0.42
  const points = [
    `${end.x},${end.y}`,
    `${end.x + size * Math.cos(left)},${end.y + size * Math.sin(left)}`,
    `${end.x + size * Math.cos(right)},${end.y + size * Math.sin(right)}`,
  ].join(' ')
  return <polygon className={className} points={points} />
}

function ZoomControls({ zoom }: { zoom: Zoom }) {
  return (
    <div className="zoom" role="toolbar" aria-label="Zoom">
      <button type="button" aria-label="Zoom out" onClick={zoom.zoomOut}>
        −
      </button>
      <output aria-label="Zoom level">
        {zoom.scale === null ? '' : `${Math.round(zoom.scale * 100)}%`}
      </output>
      <button type="button" aria-label="Zoom in" onClick={zoom.zoomIn}>
        +
      </button>
      <button type="button" aria-pressed={zoom.fitted} onClick={zoom.fit}>
        Fit
      </button>
      <button type="button" onClick={zoom.actualSize}>
        100%
      </button>
    </div>
  )
}

/**
 * The statechart, drawn from the running machine's definition and laid out by ELK, in a box
 * that pans and zooms. States carry `data-state` (dotted path) and `data-active`; edges
 * `data-edge` and `data-last`, their labels `data-label-of` with the same edge id.
 */
export function Statechart() {
  const [layout, setLayout] = useState<Layout | null>(null)
  const [failure, setFailure] = useState<string | null>(null)
  useEffect(() => {
    let alive = true
    layoutMachine(machineModel(auth.actor.logic), measure).then(
      (result) => alive && setLayout(result),
      (error: unknown) => alive && setFailure(String(error)),
    )
    return () => {
      alive = false
    }
  }, [])
  const viewport = useRef<HTMLDivElement>(null)
  const zoom = useZoom(viewport, layout)

  const value = useAuthSelector((snapshot) => stateValueText(snapshot.value))
  const active = useMemo(() => {
    const parts = value.split('.')
    return new Set(parts.map((_, i) => parts.slice(0, i + 1).join('.')))
  }, [value])
  const last = useSyncExternalStore(lastTransition.subscribe, lastTransition.get)
  const lastEdges = useMemo(() => new Set(last.edges), [last])

  // On a phone only part of the chart is in view: bring the state the session entered into
  // it (on entering, not on every zoom, which keeps the point under the pointer).
  const { reveal, scale } = zoom
  const drawn = scale !== null
  useEffect(() => {
    const entered = layout?.states.find((state) => state.model.path === value)
    if (entered && drawn) reveal(entered)
  }, [layout, value, drawn, reveal])

  const machineId = auth.actor.logic.id
  return (
    <>
      <ZoomControls zoom={zoom} />
      <div className="chart-viewport" ref={viewport}>
        {failure ? (
          <p className="error">Layout failed: {failure}</p>
        ) : !layout || scale === null ? (
          <p className="muted">Laying out the statechart…</p>
        ) : (
          <Drawing
            layout={layout}
            scale={scale}
            machineId={machineId}
            value={value}
            active={active}
            last={last}
            lastEdges={lastEdges}
          />
        )}
      </div>
      <Legend />
    </>
  )
}

function Drawing({
  layout,
  scale,
  machineId,
  value,
  active,
  last,
  lastEdges,
}: {
  layout: Layout
  scale: number
  machineId: string
  value: string
  active: Set<string>
  last: LastTransition
  lastEdges: Set<string>
}) {
  const shortId = (id: string) => id.replaceAll(`${machineId}.`, '')
  return (
    <svg
      className="statechart"
      data-testid="statechart"
      data-ready="true"
      data-active-state={value}
      data-scale={scale}
      width={layout.width * scale}
      height={layout.height * scale}
      viewBox={`0 0 ${layout.width} ${layout.height}`}
      role="img"
      aria-label={`Statechart of ${machineId}; active state ${value}`}
    >
      <rect
        className="machine"
        x={1}
        y={1}
        width={layout.width - 2}
        height={layout.height - 2}
        rx={14}
      />
      <text className="machine-title" x={16} y={22}>
        #{machineId}
      </text>
      {layout.states.map((state) => {
        const isActive = active.has(state.model.path)
        const entered = isActive && last.edges.some((edge) => edge.endsWith(`->${state.model.id}`))
        const classes = ['state', state.compound && 'compound', isActive && 'active']
        // The whole active chain in the session's tone: `authenticated` outlined amber when
        // its `stale` child is active, not green.
        if (isActive) classes.push(`tone-${toneOf(value)}`)
        return (
          <g
            key={state.model.id}
            className={classes.filter(Boolean).join(' ')}
            data-state={state.model.path}
            data-active={isActive ? 'true' : 'false'}
          >
            <rect
              x={state.x}
              y={state.y}
              width={state.width}
              height={state.height}
              rx={state.compound ? 12 : 9}
            />
            {entered && (
              <rect
                key={last.seq}
                className="entered"
                x={state.x}
                y={state.y}
                width={state.width}
                height={state.height}
                rx={state.compound ? 12 : 9}
              />
            )}
            <text className="state-title" x={state.x + 12} y={state.y + 21}>
              {state.model.key}
            </text>
            {state.details.map((line, i) => {
              const transition =
                line.startsWith(STAYS) || line.startsWith(REENTERS) ? line.slice(STAYS.length) : ''
              const hit =
                isActive &&
                transition !== '' &&
                last.internal.some((t) => t.stateId === state.model.id && transition === t.label)
              const note = state.model.notes[transition]
              return (
                <text
                  key={hit ? `${line}-${last.internalSeq}` : line}
                  className={`state-detail${hit ? ' hit' : ''}`}
                  x={state.x + 12}
                  y={state.y + 38 + i * 15}
                >
                  {note && <title>{note}</title>}
                  {line}
                </text>
              )
            })}
          </g>
        )
      })}
      {layout.initials.map((initial) => (
        <g key={initial.parentId} className="initial">
          <circle cx={initial.x} cy={initial.y} r={5} />
          <path d={initial.d} />
          <Arrow end={initial.end} className="arrow" />
        </g>
      ))}
      {layout.edges.map((edge) => {
        const isLast = lastEdges.has(edge.model.id)
        const id = shortId(edge.model.id)
        return (
          <g
            key={edge.model.id}
            className={`edge${isLast ? ' last' : ''}`}
            data-edge={id}
            data-last={isLast ? 'true' : 'false'}
          >
            <title>{`${id.replace('->', ' → ')}: ${edge.model.labels.join(', ')}`}</title>
            <path className="line" d={edge.d} />
            {isLast && <path key={last.seq} className="flow" d={edge.d} />}
            <Arrow end={edge.end} className="arrow" />
          </g>
        )
      })}
      {layout.edges.map((edge) => {
        const isLast = lastEdges.has(edge.model.id)
        const notes = Object.values(edge.model.notes)
        return (
          <Fragment key={edge.model.id}>
            {edge.labels.map((label) => (
              <g
                key={`${label.x},${label.y}`}
                className={`edge-label${isLast ? ' last' : ''}`}
                data-label-of={shortId(edge.model.id)}
              >
                {notes.length > 0 && <title>{notes.join('\n')}</title>}
                <rect
                  x={label.x - 2}
                  y={label.y}
                  width={label.width + 4}
                  height={label.height}
                  rx={4}
                />
                {label.lines.map((line, i) => (
                  // By position: a label's lines never move, and two of them can read alike
                  // (`  [else]` under two events).
                  // biome-ignore lint/suspicious/noArrayIndexKey: see above
                  <text key={i} x={label.x + 2} y={label.y + 12 + i * 15}>
                    {line}
                  </text>
                ))}
              </g>
            ))}
          </Fragment>
        )
      })}
    </svg>
  )
}
