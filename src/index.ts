/**
 * Silent token refresh for fetch and axios, driven by an XState statechart.
 * @packageDocumentation
 */

export {
  type AttachOptions,
  type AuthClient,
  type AuthClientOptions,
  type AuthFailureResponse,
  createAuthClient,
} from './axiosClient.js'
// Re-exported from the module that augments axios' config, so `skipAuth` reaches users.
export type { SkipAuthOption } from './axiosConfig.js'
export * from './exports.js'
