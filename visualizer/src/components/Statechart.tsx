import { useAuthSelector } from 'auth-machine/react'
import { Fragment, useEffect, useMemo, useState, useSyncExternalStore } from 'react'
import { lastTransition } from '../activity.js'
import { auth } from '../auth.js'
import { machineModel, stateValueText } from '../graph.js'
import { type Layout, layoutMachine, type Measure } from '../layout.js'

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

/**
 * The statechart, drawn from the running machine's definition and laid out by ELK. States
 * carry `data-state` (dotted path) and `data-active`; edges `data-edge` and `data-last`.
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

  const value = useAuthSelector((snapshot) => stateValueText(snapshot.value))
  const active = useMemo(() => {
    const parts = value.split('.')
    return new Set(parts.map((_, i) => parts.slice(0, i + 1).join('.')))
  }, [value])
  const last = useSyncExternalStore(lastTransition.subscribe, lastTransition.get)
  const lastEdges = useMemo(() => new Set(last.edges), [last])

  if (failure) return <p className="error">Layout failed: {failure}</p>
  if (!layout) return <p className="muted">Laying out the statechart…</p>

  const machineId = auth.actor.logic.id
  return (
    <svg
      className="statechart"
      data-testid="statechart"
      data-ready="true"
      data-active-state={value}
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
        return (
          <g
            key={state.model.id}
            className={`state${state.compound ? ' compound' : ''}${isActive ? ' active' : ''}`}
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
              const hit =
                isActive &&
                last.internal.some(
                  (t) => t.stateId === state.model.id && line.startsWith(`↺ ${t.label}`),
                )
              return (
                <text
                  key={hit ? `${line}-${last.internalSeq}` : line}
                  className={`state-detail${hit ? ' hit' : ''}`}
                  x={state.x + 12}
                  y={state.y + 38 + i * 15}
                >
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
        return (
          <g
            key={edge.model.id}
            className={`edge${isLast ? ' last' : ''}`}
            data-edge={edge.model.id.replaceAll(`${machineId}.`, '')}
            data-last={isLast ? 'true' : 'false'}
          >
            <path className="line" d={edge.d} />
            {isLast && <path key={last.seq} className="flow" d={edge.d} />}
            <Arrow end={edge.end} className="arrow" />
          </g>
        )
      })}
      {layout.edges.map((edge) => {
        const isLast = lastEdges.has(edge.model.id)
        return (
          <Fragment key={edge.model.id}>
            {edge.labels.map((label) => (
              <g key={`${label.x},${label.y}`} className={`edge-label${isLast ? ' last' : ''}`}>
                <rect
                  x={label.x - 2}
                  y={label.y}
                  width={label.width + 4}
                  height={label.height}
                  rx={4}
                />
                {label.lines.map((line, i) => (
                  <text key={line} x={label.x + 2} y={label.y + 12 + i * 15}>
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
