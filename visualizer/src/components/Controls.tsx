import { useAuth } from 'auth-machine/react'
import { useState } from 'react'
import { addLog } from '../activity.js'
import { auth, signIn } from '../auth.js'
import { errorName, fire } from '../requests.js'
import { type FaultKind, isOffline, tokenServer } from '../server.js'
import { refreshStatus, useServerStatus } from '../status.js'
import { TransportSwitch } from './TransportSwitch.js'

const FAULTS: { kind: FaultKind; label: string }[] = [
  { kind: 500, label: '500 error (retried)' },
  { kind: 503, label: '503 unavailable (retried)' },
  { kind: 429, label: '429 rate limit (retried)' },
  { kind: 401, label: '401 invalid_grant (ends session)' },
  { kind: 'hang', label: 'hang (until refreshTimeout)' },
  { kind: 'reset', label: 'reset connection (retried)' },
  { kind: 'malformed', label: 'malformed HTML (retried)' },
  { kind: 'malformed-json', label: 'JSON without token (retried)' },
]

/** Buttons that act on the real token server (/__control/*) and on the client. */
export function Controls() {
  const { isAuthenticated, logout } = useAuth()
  const { status } = useServerStatus()
  const [username, setUsername] = useState('ada')
  const [count, setCount] = useState(10)
  const [fault, setFault] = useState<FaultKind>(500)
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
          onClick={() => run('server: expire access tokens', tokenServer.expireAccessTokens)}
        >
          Expire access token
        </button>
        <button
          type="button"
          onClick={() => run('server: revoke refresh tokens', tokenServer.revokeSessions)}
        >
          Revoke refresh token
        </button>
      </div>
      <div className="row">
        <select
          aria-label="refresh fault"
          value={String(fault)}
          onChange={(event) => {
            const picked = FAULTS.find((f) => String(f.kind) === event.target.value)
            if (picked) setFault(picked.kind)
          }}
        >
          {FAULTS.map((f) => (
            <option key={String(f.kind)} value={String(f.kind)}>
              {f.label}
            </option>
          ))}
        </select>
      </div>
      <div className="row">
        <button
          type="button"
          onClick={() =>
            run(`server: next refresh fails with ${fault}`, () =>
              tokenServer.failNextRefresh(fault),
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
                ? run('offline: every refresh connection is reset', () =>
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
