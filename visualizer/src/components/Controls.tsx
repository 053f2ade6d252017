import { useAuth } from 'auth-machine/react'
import { useState } from 'react'
import { addLog } from '../activity.js'
import { auth, signIn } from '../auth.js'
import { errorName, fire } from '../requests.js'
import { type FaultKind, isOffline, tokenServer } from '../server.js'
import { refreshStatus, useServerStatus } from '../status.js'
import { TransportSwitch } from './TransportSwitch.js'

interface Fault {
  id: string
  kind: FaultKind
  /** The server refreshes first, then fails instead of answering. */
  afterRefresh?: boolean
  label: string
  /** What the server does and what the page sees, under the picker. */
  effect: string
}

const FAULTS: [Fault, ...Fault[]] = [
  {
    id: '500',
    kind: 500,
    label: '500 error (retried)',
    effect: 'The server answers 500 without spending the token; the client backs off and retries.',
  },
  {
    id: '503',
    kind: 503,
    label: '503 unavailable (retried)',
    effect: 'The server answers 503 without spending the token; the client backs off and retries.',
  },
  {
    id: '429',
    kind: 429,
    label: '429 rate limit (retried)',
    effect: 'The server answers 429 (Retry-After: 1); the client backs off and retries.',
  },
  {
    id: '401',
    kind: 401,
    label: '401 invalid_grant (ends session)',
    effect: 'The server refuses the refresh token: the session ends in expired.',
  },
  {
    id: 'hang',
    kind: 'hang',
    label: 'hang (until refreshTimeout)',
    effect:
      'The server never answers (until Release hung): the attempt times out and the retry joins the call still on the wire.',
  },
  {
    id: 'reset',
    kind: 'reset',
    label: 'reset before the server processed the refresh (retried)',
    effect:
      'The connection drops before the server looks at the refresh token: nothing is spent. The page sees a network error and retries with the same token, which works.',
  },
  {
    id: 'reset-after',
    kind: 'reset',
    afterRefresh: true,
    label: 'reset after the server processed it (rotation happened, the answer is lost)',
    effect:
      'The server spends the refresh token and issues new ones, then the connection drops: the page sees a network error and still holds the spent token. Its retry presents it again, which this server (strict rotation, no grace window) takes as reuse: the session ends in expired and reuse detections count 1.',
  },
  {
    id: 'malformed',
    kind: 'malformed',
    label: 'malformed HTML (ends session)',
    effect:
      'The server answers 200 with an HTML page instead of tokens. It may have rotated the token, so the client does not present it again: the session ends in expired.',
  },
  {
    id: 'malformed-json',
    kind: 'malformed-json',
    label: 'JSON without token (ends session)',
    effect:
      'The server answers 200 with JSON that holds no access token. It may have rotated the token, so the client does not present it again: the session ends in expired.',
  },
]

/** Buttons that act on the real token server (/__control/*) and on the client. */
export function Controls() {
  const { isAuthenticated, logout } = useAuth()
  const { status } = useServerStatus()
  const [username, setUsername] = useState('ada')
  const [count, setCount] = useState(10)
  const [fault, setFault] = useState(FAULTS[0])
  // Shown as asked at once, then as the server reports it.
  const [offlineWanted, setOfflineWanted] = useState<boolean | null>(null)
  const offline = offlineWanted ?? isOffline(status)
  const hung = status?.refreshInFlight ?? 0

  async function run(label: string, action: () => Promise<void>) {
    addLog('control', label)
    try {
      await action()
    } catch (error) {
      addLog('error', `${label} failed: ${errorName(error)}`)
    } finally {
      await refreshStatus()
    }
  }

  return (
    <section className="card controls" aria-label="Controls">
      <h2>Controls</h2>
      <div className="row">
        <input
          aria-label="user name"
          value={username}
          onChange={(event) => setUsername(event.target.value)}
          size={8}
        />
        <button
          type="button"
          className="primary"
          onClick={() => run(`sign in as ${username}`, () => signIn(username))}
        >
          Sign in
        </button>
        <button
          type="button"
          disabled={!isAuthenticated}
          onClick={() => run('log out', () => logout())}
        >
          Log out
        </button>
      </div>
      <TransportSwitch />
      <div className="row">
        <input
          aria-label="number of requests"
          type="number"
          min={1}
          max={500}
          value={count}
          onChange={(event) =>
            setCount(Math.max(1, Math.min(500, Number(event.target.value) || 1)))
          }
        />
        <button type="button" className="primary" onClick={() => void fire(count)}>
          Fire {count} requests
        </button>
      </div>
      <h3>Token server</h3>
      <div className="row">
        <button
          type="button"
          aria-describedby="expire-effect"
          onClick={() =>
            run(
              'server: expire access tokens (server side only: the countdown here keeps running; the next request gets a 401)',
              tokenServer.expireAccessTokens,
            )
          }
        >
          Expire access token
        </button>
        <button
          type="button"
          aria-describedby="revoke-effect"
          onClick={() =>
            run(
              'server: revoke the session (its refresh token and every access token issued with it)',
              tokenServer.revokeSessions,
            )
          }
        >
          Revoke refresh token
        </button>
      </div>
      <p className="hint" id="expire-effect">
        Expire: the server stops accepting the current access token; this page is not told, so its
        countdown keeps running until a request gets a 401.
      </p>
      <p className="hint" id="revoke-effect">
        Revoke: ends the session at the server, so the access token stops working too; the next
        request's refresh is refused.
      </p>
      <div className="row">
        <select
          aria-label="refresh fault"
          aria-describedby="fault-effect"
          value={fault.id}
          onChange={(event) => {
            const picked = FAULTS.find((f) => f.id === event.target.value)
            if (picked) setFault(picked)
          }}
        >
          {FAULTS.map((f) => (
            <option key={f.id} value={f.id}>
              {f.label}
            </option>
          ))}
        </select>
      </div>
      <p className="hint" id="fault-effect">
        {fault.effect}
      </p>
      <div className="row">
        <button
          type="button"
          onClick={() =>
            run(`server: next refresh fails: ${fault.label}`, () =>
              tokenServer.failNextRefresh(fault.kind, 1, fault.afterRefresh),
            )
          }
        >
          Fail next refresh
        </button>
        <button
          type="button"
          disabled={hung === 0}
          onClick={() => run('server: answer hung refreshes (503)', tokenServer.releaseHung)}
        >
          Release hung
        </button>
        <button type="button" onClick={() => run('server: clear faults', tokenServer.clearFaults)}>
          Clear faults
        </button>
      </div>
      <h3>Client</h3>
      <div className="row">
        <label className="toggle">
          <input
            type="checkbox"
            checked={offline}
            onChange={async (event) => {
              const wanted = event.target.checked
              setOfflineWanted(wanted)
              await (wanted
                ? run('offline: every refresh connection is reset before the server reads it', () =>
                    tokenServer.failNextRefresh('reset', null),
                  )
                : run('online again: clear faults, wake()', async () => {
                    await tokenServer.clearFaults()
                    auth.wake()
                  }))
              setOfflineWanted(null)
            }}
          />
          Offline (simulated)
        </label>
        <button type="button" onClick={() => run('wake()', async () => auth.wake())}>
          Wake
        </button>
        <button
          type="button"
          onClick={() => {
            addLog('control', 'open another tab')
            window.open(window.location.href, '_blank')
          }}
        >
          Open another tab
        </button>
      </div>
    </section>
  )
}
