import { addLog } from '../activity.js'
import { type ServerCounters, tokenServer } from '../server.js'
import { refreshStatus, useServerStatus } from '../status.js'

const SHOWN: { key: keyof ServerCounters; label: string; alarm?: boolean }[] = [
  { key: 'refreshCalls', label: 'refresh calls' },
  { key: 'refreshSuccesses', label: 'refreshed' },
  { key: 'refreshFailures', label: 'refresh failed' },
  { key: 'unauthorized', label: '401s' },
  { key: 'reuseDetections', label: 'reuse detections', alarm: true },
  { key: 'protectedOk', label: 'API 200s' },
  { key: 'logins', label: 'logins' },
]

function faultText(fault: { kind: string | number; remaining: number | null }): string {
  if (fault.remaining === null) return `${fault.kind} (always)`
  return fault.remaining > 1 ? `${fault.kind} ×${fault.remaining}` : String(fault.kind)
}

/** The token server's counters, polled from GET /__control/status. */
export function Counters() {
  const { status, error } = useServerStatus()
  return (
    <section className="counters" aria-label="Token server counters">
      <dl>
        {SHOWN.map(({ key, label, alarm }) => {
          const value = status?.counters[key]
          return (
            <div key={key} className={alarm && value ? 'counter alarm' : 'counter'}>
              <dd data-counter={key}>{value ?? '–'}</dd>
              <dt>{label}</dt>
            </div>
          )
        })}
        <div className="counter">
          <dd data-counter="refreshInFlight">{status?.refreshInFlight ?? '–'}</dd>
          <dt>in flight</dt>
        </div>
      </dl>
      <div className="server-line">
        <p className="muted">
          {error
            ? `token server unreachable: ${error}`
            : status && status.faults.length > 0
              ? `armed faults: ${status.faults.map(faultText).join(', ')}`
              : 'no faults armed'}
        </p>
        <button
          type="button"
          className="small"
          onClick={async () => {
            addLog('control', 'server: reset counters')
            await tokenServer.resetCounters()
            await refreshStatus()
          }}
        >
          Reset counters
        </button>
      </div>
    </section>
  )
}
