import type { QueuedRequest } from 'auth-machine'
import { refreshDueAt } from 'auth-machine/machine'
import { useAuth, useAuthSelector } from 'auth-machine/react'
import { config } from '../config.js'
import { stateValueText } from '../graph.js'
import { seconds, useNow } from '../hooks.js'
import { toneOf } from '../tone.js'

interface SessionTimes {
  obtainedAt: number | undefined
  expiresAt: number | undefined
  hasRefreshToken: boolean
}

const sameTimes = (a: SessionTimes | null, b: SessionTimes | null) =>
  a === b ||
  (a !== null &&
    b !== null &&
    a.obtainedAt === b.obtainedAt &&
    a.expiresAt === b.expiresAt &&
    a.hasRefreshToken === b.hasRefreshToken)

function Expiry({ times, now }: { times: SessionTimes; now: number }) {
  const { obtainedAt, expiresAt } = times
  if (expiresAt === undefined)
    return <p className="muted">No known expiry: no proactive refresh.</p>
  const dueAt = refreshDueAt({ accessToken: '', expiresAt, obtainedAt }, config.refreshMargin)
  const start = obtainedAt ?? expiresAt - config.accessTokenTtl * 1000
  const span = Math.max(1, expiresAt - start)
  const elapsed = Math.min(1, Math.max(0, (now - start) / span))
  const duePosition = dueAt === undefined ? null : Math.min(1, Math.max(0, (dueAt - start) / span))
  const left = expiresAt - now
  return (
    <div className="expiry">
      <div className="bar" title="access token lifetime">
        <div className="elapsed" style={{ width: `${elapsed * 100}%` }} />
        {duePosition !== null && (
          <div
            className="due"
            style={{ left: `${duePosition * 100}%` }}
            title="proactive refresh"
          />
        )}
      </div>
      <p>
        <span data-testid="expires-in">
          {left > 0 ? `access token expires in ${seconds(left)}` : `expired ${seconds(-left)} ago`}
        </span>
        {dueAt !== undefined && dueAt > now && (
          <span className="muted"> · proactive refresh in {seconds(dueAt - now)}</span>
        )}
      </p>
    </div>
  )
}

function Queue({ queue, now }: { queue: readonly QueuedRequest[]; now: number }) {
  const shown = queue.slice(0, 10)
  return (
    <div className="queue" data-queue-size={queue.length}>
      <h3>
        Queue <span className="pill">{queue.length}</span>
      </h3>
      {queue.length === 0 ? (
        <p className="muted">Empty: requests only wait while refreshing.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>id</th>
              <th>request</th>
              <th className="num">waiting</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((request) => (
              <tr key={request.id}>
                <td>#{request.id}</td>
                <td>
                  {request.method} {request.url}
                </td>
                <td className="num">{seconds(Math.max(0, now - request.enqueuedAt))}</td>
              </tr>
            ))}
            {queue.length > shown.length && (
              <tr>
                <td colSpan={3} className="muted">
                  … and {queue.length - shown.length} more
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </div>
  )
}

/** The machine's context: state, generation, expiry countdown, attempt, error, queue. */
export function SessionPanel() {
  const { generation, error } = useAuth()
  const value = useAuthSelector((snapshot) => stateValueText(snapshot.value))
  const attempt = useAuthSelector((snapshot) => snapshot.context.attempt)
  const queue = useAuthSelector((snapshot) => snapshot.context.queue)
  const times = useAuthSelector((snapshot) => {
    const { session } = snapshot.context
    return session
      ? {
          obtainedAt: session.obtainedAt,
          expiresAt: session.expiresAt,
          hasRefreshToken: session.refreshToken !== undefined,
        }
      : null
  }, sameTimes)
  const now = useNow(200)
  return (
    <section className="card session" aria-label="Context">
      <h2>Context</h2>
      <dl className="facts">
        <dt>state</dt>
        <dd data-testid="state-value">{value}</dd>
        <dt>generation</dt>
        <dd data-testid="generation">{generation}</dd>
        <dt>attempt</dt>
        <dd data-testid="attempt">{attempt}</dd>
        <dt>session</dt>
        <dd>
          {times
            ? `access token${times.hasRefreshToken ? ' + refresh token' : ''} held (never shown)`
            : 'none'}
        </dd>
        <dt>error</dt>
        {/* Red only when the session is over; a failure it survives is a warning. */}
        <dd
          className={error ? (toneOf(value) === 'bad' ? 'error' : 'warning') : 'muted'}
          data-testid="error"
        >
          {error
            ? `${error.code}${error.status ? ` ${error.status}` : ''}: ${error.message}`
            : 'none'}
        </dd>
      </dl>
      {times && <Expiry times={times} now={now} />}
      <Queue queue={queue} now={now} />
    </section>
  )
}
