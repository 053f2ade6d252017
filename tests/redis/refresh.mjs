// The refresh function of the Redis tests' clients, shared by the worker processes (plain ESM,
// worker.mjs) and the in-process clients of the test files (through support.ts).

/**
 * A refresh function that posts the session's refresh token to `endpoint` with a bare fetch
 * (never `auth.fetch`, which would wait for this very refresh) and passes `signal` on.
 */
export function refreshAt(endpoint) {
  return async (session, { signal }) => {
    const response = await fetch(endpoint, {
      method: 'POST',
      signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: session.refreshToken }),
    })
    if (!response.ok) {
      throw Object.assign(new Error(`refresh failed: ${response.status}`), {
        status: response.status,
      })
    }
    return response.json()
  }
}
