import type { RefreshFunction } from '../src/fetch.js'

/** See refresh-at.mjs: a refresh function posting to `endpoint` (`/auth/refresh` of a test server). */
export declare function refreshAt(endpoint: string): RefreshFunction
