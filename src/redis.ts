/**
 * `auth-machine/redis`: the processes of a Node service share one session through Redis.
 * Needs the `redis` package (node-redis) installed next to `auth-machine`.
 */
export {
  type RedisClientLike,
  type RedisCoordinatorOptions,
  redisCoordinator,
} from './coordination/redis/index.js'
