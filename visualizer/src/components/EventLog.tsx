import { useSyncExternalStore } from 'react'
import { clearLog, log } from '../activity.js'

function time(at: number): string {
  const date = new Date(at)
  const pad = (n: number, width = 2) => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** Machine events, transitions, emitted events and control actions, newest first. */
export function EventLog() {
  const entries = useSyncExternalStore(log.subscribe, log.get)
  return (
    <section className="card log" aria-label="Event log">
      <header>
        <h2>Event log</h2>
        <button type="button" className="small" onClick={clearLog}>
          Clear
        </button>
      </header>
      <ol data-testid="event-log">
        {[...entries].reverse().map((entry) => (
          <li key={entry.id} className={entry.kind}>
            <time>{time(entry.at)}</time>
            <span className="text">{entry.text}</span>
            {entry.count > 1 && <span className="count">×{entry.count}</span>}
          </li>
        ))}
      </ol>
    </section>
  )
}
