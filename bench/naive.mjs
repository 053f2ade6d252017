// The hand-written recipe most blog posts show: a request interceptor that reads the token,
// and a response interceptor with an `isRefreshing` flag, a `failedQueue` of waiting
// promises and a `_retry` flag on the original request. Written here as those posts write
// it, defects included (see DESIGN.md): it is the baseline, not a recommendation.

/**
 * @param {import('axios').AxiosInstance} http the instance to protect
 * @param {{
 *   storage: { getItem(key: string): string | null, setItem(key: string, value: string): void },
 *   refresh: (refreshToken: string | null) => Promise<{ accessToken: string, refreshToken?: string }>,
 * }} options `refresh` posts the refresh token with a bare axios call
 */
export function applyNaiveRefresh(http, { storage, refresh }) {
  let isRefreshing = false
  let failedQueue = []

  const processQueue = (error, token = null) => {
    for (const promise of failedQueue) {
      if (error) promise.reject(error)
      else promise.resolve(token)
    }
    failedQueue = []
  }

  const requestId = http.interceptors.request.use((config) => {
    const token = storage.getItem('accessToken')
    if (token) config.headers.Authorization = `Bearer ${token}`
    return config
  })

  const responseId = http.interceptors.response.use(
    (response) => response,
    (error) => {
      const originalRequest = error.config
      if (error.response?.status === 401 && originalRequest && !originalRequest._retry) {
        if (isRefreshing) {
          return new Promise((resolve, reject) => {
            failedQueue.push({ resolve, reject })
          }).then((token) => {
            originalRequest.headers.Authorization = `Bearer ${token}`
            return http(originalRequest)
          })
        }

        originalRequest._retry = true
        isRefreshing = true
        return new Promise((resolve, reject) => {
          refresh(storage.getItem('refreshToken'))
            .then((data) => {
              storage.setItem('accessToken', data.accessToken)
              if (data.refreshToken) storage.setItem('refreshToken', data.refreshToken)
              originalRequest.headers.Authorization = `Bearer ${data.accessToken}`
              processQueue(null, data.accessToken)
              resolve(http(originalRequest))
            })
            .catch((refreshError) => {
              processQueue(refreshError, null)
              reject(refreshError)
            })
            .finally(() => {
              isRefreshing = false
            })
        })
      }
      return Promise.reject(error)
    },
  )

  return {
    /** Requests waiting for the refresh. */
    get queued() {
      return failedQueue.length
    },
    eject() {
      http.interceptors.request.eject(requestId)
      http.interceptors.response.eject(responseId)
    },
  }
}
