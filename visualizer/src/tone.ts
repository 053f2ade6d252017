// One colour per meaning, shared by the status badge, the active state in the chart and the
// context's error line: a stale session is a warning (the refresh failed, the session is
// kept), not the green of a fresh one, and only an expired session is an error.

export type Tone = 'neutral' | 'ok' | 'busy' | 'warn' | 'bad'

/** The tone of a state path such as `authenticated.stale` or `refreshing.backoff`. */
export function toneOf(path: string): Tone {
  if (path === 'authenticated.stale') return 'warn'
  if (path.startsWith('authenticated')) return 'ok'
  if (path.startsWith('refreshing')) return 'busy'
  if (path.startsWith('expired')) return 'bad'
  return 'neutral'
}
