import { useAuthSelector } from 'auth-machine/react'
import { useSyncExternalStore } from 'react'
import { config } from '../config.js'
import { stateValueText } from '../graph.js'
import { connectInspector, disconnectInspector, inspectorOn } from '../inspector.js'
import { Controls } from './Controls.js'
import { Counters } from './Counters.js'
import { EventLog } from './EventLog.js'
import { SessionPanel } from './SessionPanel.js'
import { Statechart } from './Statechart.js'

function InspectorToggle() {
  const on = useSyncExternalStore(inspectorOn.subscribe, inspectorOn.get)
  return (
    <label
      className="toggle"
      title="Opens stately.ai/inspect in a new window (needs a network connection)"
    >
      <input
        type="checkbox"
        checked={on}
        onChange={(event) => (event.target.checked ? connectInspector() : disconnectInspector())}
      />
      Stately inspector
    </label>
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
        <span className={`badge ${status}`} data-status={status}>
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
