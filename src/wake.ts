/**
 * In a browser, coming back online or to the foreground is the moment to catch up: calls
 * `wake` then. Returns a function that stops listening; a no-op outside browsers.
 */
export function listenForWake(wake: () => void): () => void {
  if (typeof window === 'undefined' || typeof document === 'undefined') return () => undefined
  const onVisible = () => {
    if (document.visibilityState === 'visible') wake()
  }
  window.addEventListener('online', wake)
  document.addEventListener('visibilitychange', onVisible)
  return () => {
    window.removeEventListener('online', wake)
    document.removeEventListener('visibilitychange', onVisible)
  }
}
