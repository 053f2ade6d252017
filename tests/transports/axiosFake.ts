// An in-process axios adapter: the custom adapter a test needs when the adapter itself is
// what is under test (held requests, re-sent configs).
import type { AxiosAdapter, InternalAxiosRequestConfig } from 'axios'

export const API = 'https://api.test'
export const tokens = (n = 1) => ({
  accessToken: `access-${n}`,
  refreshToken: `refresh-${n}`,
  expiresIn: 3600,
})

/** An in-process axios adapter: answers with `status(config)` and records each call. */
export function fakeAdapter(
  answer: (config: InternalAxiosRequestConfig) => number | Error = () => 200,
) {
  const calls: Array<{ url: string; authorization: unknown; signal: AbortSignal | undefined }> = []
  const adapter: AxiosAdapter = async (config) => {
    calls.push({
      url: String(config.url),
      authorization: config.headers.get?.('Authorization') ?? config.headers.Authorization,
      signal: config.signal as AbortSignal | undefined,
    })
    const status = answer(config)
    if (status instanceof Error) throw status
    const response = {
      data: { ok: status < 400 },
      status,
      statusText: '',
      headers: {},
      config,
      request: {},
    }
    if (status >= 400) {
      const { AxiosError } = await import('axios')
      throw new AxiosError(`status ${status}`, 'ERR_BAD_REQUEST', config, {}, response)
    }
    return response
  }
  return { adapter, calls }
}

/** A promise the test settles itself. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((a, b) => {
    resolve = a
    reject = b
  })
  return { promise, resolve, reject }
}

/** Collects process warnings while `run` runs. */
export async function warningsDuring(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = []
  const on = (w: Error) => seen.push(`${w.name}: ${w.message}`)
  process.on('warning', on)
  try {
    await run()
    // Warnings are emitted on process.nextTick.
    await new Promise((r) => setImmediate(r))
  } finally {
    process.off('warning', on)
  }
  return seen
}
