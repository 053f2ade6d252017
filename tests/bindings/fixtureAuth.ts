// The client every binding's fixture app uses (tests/{react,vue,svelte}/fixture), so the
// three apps differ only in their framework code. The token server's URL comes in the query
// string (?server=...).
import axios from 'axios'
import { AuthError, createAuthClient, type TokenResponse } from '../../src/index.js'

const server = new URLSearchParams(window.location.search).get('server') ?? ''

export const http = axios.create({ baseURL: server })

export const auth = createAuthClient({
  http,
  refresh: async (session, { signal }) => {
    const { data } = await axios.post(
      `${server}/auth/refresh`,
      { refreshToken: session.refreshToken },
      { signal },
    )
    return data
  },
})

/** The app's own login call; its answer goes to the binding's `login`. */
export async function signIn(): Promise<TokenResponse> {
  const { data } = await axios.post(`${server}/auth/login`, {
    username: 'ada',
    password: 'secret',
  })
  return data
}

/** Five protected requests at once, as `ok` or the typed error's code, comma-separated. */
export async function fetchFive(): Promise<string> {
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => http.get('/api/resource')),
  )
  const outcome = (result: PromiseSettledResult<unknown>) => {
    if (result.status === 'fulfilled') return 'ok'
    return result.reason instanceof AuthError ? result.reason.code : String(result.reason)
  }
  return results.map(outcome).join(',')
}

/**
 * How many times each counted element was rendered. Kept outside every framework's
 * reactivity, so counting does not itself cause a render. Svelte re-evaluates a template
 * expression when the values it reads change, so its fixture passes the value shown as `_shown`.
 */
const renders: Record<string, number> = {}
export function countRender(name: string, _shown?: unknown): number {
  renders[name] = (renders[name] ?? 0) + 1
  return renders[name]
}
