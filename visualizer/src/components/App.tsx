import { useAuthSelector } from 'auth-machine/react'
import { useSyncExternalStore } from 'react'
import { config } from '../config.js'
import { stateValueText } from '../graph.js'
import {
  connectInspector,
  disconnectInspector,
  type InspectorStatus,
  inspectorStatus,
} from '../inspector.js'
import { toneOf } from '../tone.js'
import { Controls } from './Controls.js'
import { Counters } from './Counters.js'
import { EventLog } from './EventLog.js'
import { SessionPanel } from './SessionPanel.js'
import { Statechart } from './Statechart.js'

const INSPECTOR_NOTES: Record<InspectorStatus, string> = {
  off: '',
  opening: 'waiting for stately.ai/inspect to answer in its window…',
  connected: 'connected: events go to the inspector window',
  blocked: 'the browser blocked the inspector window: allow pop-ups for this page',
  unreachable: 'could not reach stately.ai: the inspector needs a network connection',
}

function InspectorToggle() {
  const status = useSyncExternalStore(inspectorStatus.subscribe, inspectorStatus.get)
  const on = status === 'opening' || status === 'connected'
  const failed = status === 'blocked' || status === 'unreachable'
  return (
    <div className="inspector">
      <label
        className="toggle"
        title="Opens stately.ai/inspect in a new window (needs a network connection)"
      >
        <input
          type="checkbox"
          checked={on}
          aria-describedby="inspector-status"
          onChange={(event) => (event.target.checked ? connectInspector() : disconnectInspector())}
        />
        Stately inspector
      </label>
      <span
        id="inspector-status"
        role="status"
        className={failed ? 'inspector-status failed' : 'inspector-status'}
        data-status={status}
      >
        {INSPECTOR_NOTES[status]}
      </span>
    </div>
  )
}

export function App() {
  const value = useAuthSelector((snapshot) => stateValueText(snapshot.value))
  const status = value.split('.')[0] ?? value
  return (
    <div className="app">
      <header className="top">
        <h1>
          auth-machine <span className="muted">live statechart</span>
        </h1>
        <span className={`badge tone-${toneOf(value)}`} data-status={status}>
          {value}
        </span>
        <span className="muted config">
          access token {config.accessTokenTtl} s · refresh {config.refreshMargin / 1000} s early ·
          timeout {config.refreshTimeout / 1000} s · {config.retry.retries} retries
          {config.serverUrl ? ` · token server ${config.serverUrl}` : ''}
        </span>
        <InspectorToggle />
      </header>
      <section className="card chart" aria-label="Statechart">
        <Statechart />
      </section>
      <Counters />
      <main>
        <Controls />
        <SessionPanel />
        <EventLog />
      </main>
    </div>
  )
}
