// The implementation is plain ESM in scripts/ so that the Redis benchmark and demo (Node
// scripts, no build step) start redis-server exactly as the tests do.
export type { RedisServer } from '../../scripts/redis-server.mjs'
export { startRedisServer } from '../../scripts/redis-server.mjs'
