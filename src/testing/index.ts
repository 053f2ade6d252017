/**
 * Test helpers for auth-machine (Node only): a real HTTP token server with fault controls,
 * and a manual clock for deterministic timing.
 *
 * @packageDocumentation
 */
export { createManualClock, type ManualClock, type ManualTimerHandle } from './clock.js'
export { accessTokenHash, type EcPublicJwk, jwkThumbprint } from './dpop.js'
export {
  type FailNextRefreshOptions,
  REFRESH_FAULT_KINDS,
  type RefreshFaultKind,
} from './faults.js'
export type { HoldHandle } from './holds.js'
export { type AccessTokenClaims, type DecodedJwt, decodeJwt } from './jwt.js'
export { TEST_PASSWORD } from './routes.js'
export { createTestAuthServer } from './server.js'
export type { RefreshedTokens, TokenSet } from './tokens.js'
export type {
  LoggedRequest,
  TestAuthServer,
  TestAuthServerCounters,
  TestAuthServerOptions,
  TestDpopOptions,
  TestLoginOptions,
} from './types.js'
