/**
 * Silent token refresh for `fetch` (and ky, ofetch, openapi-fetch, GraphQL clients through
 * their `fetch` option), driven by an XState statechart. This entry holds no axios code: a
 * fetch-only app that imports it bundles neither axios nor the axios adapter.
 * @packageDocumentation
 */

export { type AuthClient, type AuthClientOptions, createAuthClient } from './client.js'
export * from './exports.js'
