import { AuthError } from '../../errors.js'
import type { Coordinator } from '../types.js'
import { createCipher } from './cipher.js'
import { openRedis } from './driver.js'
import type { RedisClientLike } from './link.js'

export type { RedisClientLike } from './link.js'

/** Options of {@link redisCoordinator}. */
export interface RedisCoordinatorOptions {
  /**
   * Where Redis is (`redis://…`, or `rediss://…` for TLS with a certificate Node trusts). The
   * driver owns these connections and `auth.dispose()` closes them.
   */
  url?: string
  /**
   * Or a node-redis client of the app's (a private CA, Sentinel, an ACL user…): the app
   * connects it, the driver never connects or closes it.
   */
  client?: RedisClientLike
  /**
   * Names the shared session: processes with the same `key` share it. Keys used:
   * `<key>:record`, `<key>:lock` and the channel `<key>:events`.
   */
  key: string
  /**
   * At least 32 bytes. Seals the record (AES-256-GCM, key derived with HKDF) so no token is
   * readable in Redis. Every process of the `key` needs the same secret.
   */
  secret?: string | Uint8Array
  /**
   * How long the refresh lock outlives a holder that died, in ms (at least 1 000). A live
   * holder renews it every third of it while its call is on the wire. Default 15 000.
   */
  lockTtl?: number
}

/**
 * The Node driver: the processes of a service (a worker pool, a cluster, pods) share one
 * session through Redis. One refresh per expiry: a lock (`SET NX PX` with an owner token,
 * renewed while the call is on the wire, released by compare-and-delete); inside it the
 * shared record is read again and a newer session adopted instead of spending the refresh
 * token; the record is written by compare-and-set on its version (a holder whose lock expired
 * never overwrites a newer session); pub/sub tells the others. Redis down: each process
 * refreshes alone, with one warning per outage, and shares again when Redis is back.
 *
 * @throws {@link AuthError} `INVALID_OPTIONS` on a missing `key`, both or neither of `url`
 * and `client`, a `secret` under 32 bytes, or a `lockTtl` that is not a whole number of ms
 * from 1 000.
 */
export function redisCoordinator(options: RedisCoordinatorOptions): Coordinator {
  const { key, url, client } = options
  const lockTtl = options.lockTtl ?? 15_000
  const invalid = (message: string) =>
    new AuthError(`redisCoordinator: ${message}`, 'INVALID_OPTIONS')
  if (typeof key !== 'string' || key.length === 0)
    throw invalid('`key` must be a non-empty string.')
  if ((url === undefined) === (client === undefined))
    throw invalid('pass either `url` or `client`.')
  if (url !== undefined && typeof url !== 'string') throw invalid('`url` must be a string.')
  if (client !== undefined && typeof client?.sendCommand !== 'function') {
    throw invalid('`client` must be a node-redis client (createClient() from `redis`).')
  }
  // Whole ms (Redis' PX), renewed every third: under a second the renewals would race their
  // own round trips, past 2^31 ms the timers overflow.
  if (!(Number.isSafeInteger(lockTtl) && lockTtl >= 1_000 && lockTtl <= 2_147_483_647)) {
    throw invalid('`lockTtl` must be a whole number of ms from 1000 to 2147483647.')
  }
  const cipher = options.secret === undefined ? undefined : createCipher(options.secret)
  return {
    open(context) {
      const owned = client === undefined
      return openRedis(context, {
        key,
        lockTtl,
        cipher,
        owned,
        client: owned ? ownClient(url as string) : Promise.resolve(client),
      })
    },
  }
}

async function ownClient(url: string): Promise<RedisClientLike> {
  const { createClient } = await import('redis')
  return createClient({
    url,
    // Commands fail at once while disconnected: the refresh runs in-process instead of queuing.
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000) },
  }) as unknown as RedisClientLike
}
