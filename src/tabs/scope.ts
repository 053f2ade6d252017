import type { AttachTo } from '../origin.js'
import type { TokenStorage } from '../storage.js'

/**
 * The name under which a client coordinates with other tabs (channel, lock, record).
 * TODO(helper): scope the default so clients with different attachTo/storage never share.
 */
export function crossTabName(
  explicit: string | undefined,
  _attachTo: AttachTo,
  _storage: TokenStorage,
): string {
  return explicit ?? 'auth-machine'
}
