import { addLog } from '../activity.js'
import { type ServerCounters, type ServerStatus, tokenServer } from '../server.js'
import { refreshStatus, useServerStatus } from '../status.js'

const SHOWN: { key: keyof ServerCounters; label: string; alarm?: boolean }[] = [
  { key: 'refreshCalls', label: 'refresh calls' },
  { key: 'refreshSuccesses', label: 'refreshes ok' },
  { key: 'refreshFailures', label: 'refreshes failed' },
  { key: 'unauthorized', label: '401 answers' },
  { key: 'reuseDetections', label: 'reuse detections', alarm: true },
  { key: 'protectedOk', label: 'API 200 answers' },
  { key: 'logins', label: 'logins' },
]

function faultText(fault: ServerStatus['faults'][number]): string {
  const kind = fault.afterRefresh ? `${fault.kind} after refresh` : String(fault.kind)
  if (fault.remaining === null) return `${kind} (always)`
  return fault.remaining > 1 ? `${kind} ×${fault.remaining}` : kind
}

/** One counter: label first, so a screen reader announces "refresh calls 2", not "2". */
function Counter({
  id,
  label,
  value,
  alarm,
}: {
  id: string
  label: string
  value?: number
  alarm?: boolean
}) {
  return (
    <div className={alarm && value ? 'counter alarm' : 'counter'} aria-atomic="true">
      <dt>{label}</dt>
      <dd data-counter={id}>{value ?? '–'}</dd>
    </div>
  )
}

/** The token server's counters, polled from GET /__control/status. */
export function Counters() {
  const { status, error } = useServerStatus()
  return (
    <section className="counters" aria-label="Token server counters">
      {/* Polite: a change is read out when the reader is idle, with its label (aria-atomic). */}
      <dl aria-live="polite">
        {SHOWN.map(({ key, label, alarm }) => (
          <Counter key={key} id={key} label={label} value={status?.counters[key]} alarm={alarm} />
        ))}
        <Counter id="refreshInFlight" label="refreshes in flight" value={status?.refreshInFlight} />
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
