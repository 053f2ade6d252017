// The auth.fetch client of the processes of the Redis benchmark (bench/redis.mjs,
// bench/redisWorker.mjs) and of `npm run demo:redis`: the README's quick start against the
// token server, with a `coordinator` — `redisCoordinator` on a shared key, or `false` for a
// client that refreshes alone.

import { createAuthClient } from 'auth-machine/fetch'
import { redisCoordinator } from 'auth-machine/redis'
import { refreshAt } from './refresh-at.mjs'

/**
 * @param {{
 *   serverUrl: string,
 *   redis?: { url: string, key: string },
 *   onWarning?: (message: string) => void,
 * }} options without `redis`, the client has no coordinator
 */
export function createRedisClient({ serverUrl, redis, onWarning }) {
  return createAuthClient({
    attachTo: [serverUrl],
    coordinator: redis ? redisCoordinator(redis) : false,
    ...(onWarning ? { onWarning } : {}),
    refresh: refreshAt(`${serverUrl}/auth/refresh`),
  })
}

/** The statechart's top-level state: `loggedOut`, `authenticated`, `refreshing`, `expired`. */
export function stateOf(auth) {
  const { value } = auth.actor.getSnapshot()
  return typeof value === 'string' ? value : Object.keys(value)[0]
}

/** Resolves once the client holds a session, or rejects after `ms`. */
export function untilSignedIn(auth, ms) {
  const signedIn = () => ['authenticated', 'refreshing'].includes(stateOf(auth))
  if (signedIn()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.unsubscribe()
      reject(new Error(`no session after ${ms} ms (state ${stateOf(auth)})`))
    }, ms)
    const subscription = auth.actor.subscribe(() => {
      if (!signedIn()) return
      clearTimeout(timer)
      subscription.unsubscribe()
      resolve()
    })
  })
}
