import { useSyncExternalStore } from 'react'
import { chooseTransport, TRANSPORTS, transport } from '../requests.js'

const TITLES = {
  axios: 'The axios instance given to the client as http (XHR in devtools)',
  fetch: 'auth.fetch, the drop-in fetch (fetch in devtools)',
}

/** A segmented control: which HTTP client the request buttons use. */
export function TransportSwitch() {
  const current = useSyncExternalStore(transport.subscribe, transport.get)
  return (
    <div className="row">
      <span className="muted" id="transport-label">
        Requests via
      </span>
      <div className="segmented" role="radiogroup" aria-labelledby="transport-label">
        {TRANSPORTS.map((name) => (
          <label key={name} title={TITLES[name]}>
            <input
              type="radio"
              name="transport"
              value={name}
              checked={name === current}
              onChange={() => chooseTransport(name)}
            />
            {name}
          </label>
        ))}
      </div>
    </div>
  )
}
