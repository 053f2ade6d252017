// The refresh function of clients of the built-in token server, in plain ESM: the Redis tests'
// worker processes and in-process clients, and the Redis benchmark and demo processes.

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
