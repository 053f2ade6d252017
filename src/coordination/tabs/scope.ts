import { AuthError } from '../../errors.js'
import type { AttachTo } from '../../origin.js'
import type { TokenStorage } from '../../storage.js'

/**
 * Two clients in one page would share a default cross-tab name while their scopes differ
 * (two predicate `attachTo`s): sharing would hand one client's token to the other's origins.
 * Give each client its own `crossTab: { name }` (or `crossTab: false`).
 */
export class CrossTabScopeError extends AuthError {
  override readonly name: string = 'CrossTabScopeError'
  constructor(message: string) {
    super(message, 'INVALID_OPTIONS')
  }
}

/**
 * cyrb53: a small, fast, well-mixed 53-bit string hash. Only `Math.imul` and integer
 * arithmetic, so every tab, engine and library copy computes the same value. Not a secret:
 * the name only has to differ between scopes, which the realm registry double-checks.
 */
function hash(text: string): string {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36)
}

function originOf(entry: string): string {
  try {
    return new URL(entry).origin
  } catch {
    // The origin check rejects it loudly; the name needs only to be stable.
    return entry
  }
}

/**
 * The list as a set: origins normalised, patterns by source and flags (`g`/`y` dropped,
 * as the origin check drops them), duplicates removed, sorted. Tabs listing the same
 * origins in another order or spelling get the same scope.
 */
function canonicalList(list: ReadonlyArray<string | RegExp>): string[] {
  const entries = list.map((entry) =>
    typeof entry === 'string'
      ? `origin ${originOf(entry)}`
      : `pattern /${entry.source}/${entry.flags.replace(/[gy]/g, '')}`,
  )
  return [...new Set(entries)].sort()
}

/** What a default name was derived from, in this realm: a list's text or a predicate. */
type Claim = { list: string } | { predicate: WeakRef<(url: URL) => boolean> }

// On globalThis so that two copies of the library bundled into one page see each other.
const REGISTRY_KEY = Symbol.for('auth-machine.crossTabScopes.v1')

function registry(): Map<string, Claim> {
  const holder = globalThis as { [REGISTRY_KEY]?: Map<string, Claim> }
  holder[REGISTRY_KEY] ??= new Map()
  return holder[REGISTRY_KEY]
}

/** Throws when `name` is already claimed in this realm by a different scope. */
function claim(name: string, attachTo: AttachTo, scope: string): void {
  const claims = registry()
  const previous = claims.get(name)
  if (typeof attachTo === 'function') {
    const other = previous && 'predicate' in previous ? previous.predicate.deref() : undefined
    if (other && other !== attachTo) {
      throw new CrossTabScopeError(
        'Two clients with different attachTo predicates would share the default cross-tab ' +
          "session. A predicate's scope cannot be compared, so give each client its own " +
          'crossTab: { name } (or crossTab: false). Pass the same predicate to share.',
      )
    }
    claims.set(name, { predicate: new WeakRef(attachTo) })
    return
  }
  if (previous && 'list' in previous && previous.list !== scope) {
    // Only a hash collision gets here; failing beats sharing a token across scopes.
    throw new CrossTabScopeError(
      'Two clients with different attachTo lists derived the same cross-tab name; ' +
        'give one of them crossTab: { name }.',
    )
  }
  claims.set(name, { list: scope })
}

/**
 * The name under which a client coordinates with other tabs (BroadcastChannel, Web Lock,
 * IndexedDB record).
 *
 * An explicit `crossTab: { name }` is used as given: clients that pass the same name share
 * sessions, whatever their `attachTo` and storage. The default is scoped: it is derived
 * from the normalised `attachTo` list and the storage adapter's `id`, so clients with
 * different allow-lists or stores never share a session (and a token), while every tab of
 * the same app computes the same name and shares.
 *
 * A predicate `attachTo` cannot be compared across tabs: every predicate client with the
 * same storage gets one default name. Such a client needs `crossTab: { name }` whenever
 * another client on the same origin (in any tab) uses a different predicate. Within one
 * page that mistake is detected: a second client with a different predicate function and
 * the same default name throws {@link CrossTabScopeError}. The claim lasts as long as the
 * first predicate function is alive, or until {@link releaseCrossTabName}.
 *
 * @throws {@link CrossTabScopeError} when a client in this realm already holds the default
 * name with a different scope.
 */
export function crossTabName(
  explicit: string | undefined,
  attachTo: AttachTo,
  storage: TokenStorage,
): string {
  if (explicit !== undefined) return explicit
  const storageId = storage.id ?? 'custom'
  const scope = JSON.stringify(
    typeof attachTo === 'function'
      ? { predicate: true, storage: storageId }
      : { attachTo: canonicalList(attachTo), storage: storageId },
  )
  const name = `auth-machine:${hash(scope)}`
  claim(name, attachTo, scope)
  return name
}

/**
 * Gives a default name back when its client is disposed, so that a later client (after hot
 * module replacement, say) may use another predicate. Names the client did not claim by
 * default are ignored.
 */
export function releaseCrossTabName(name: string, attachTo: AttachTo): void {
  const claims = registry()
  const current = claims.get(name)
  if (current && 'predicate' in current && current.predicate.deref() === attachTo) {
    claims.delete(name)
  }
}
