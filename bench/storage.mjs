// The browser storage the peers' READMEs use, for Node.

/** A Map-backed stand-in for `window.localStorage`, which Node does not have. */
export function memoryLocalStorage() {
  const map = new Map()
  return {
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => {
      map.set(key, String(value))
    },
    removeItem: (key) => {
      map.delete(key)
    },
    clear: () => map.clear(),
  }
}
