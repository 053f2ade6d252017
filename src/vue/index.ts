/**
 * Vue 3 bindings for auth-machine, built on `@xstate/vue`. The client is created outside
 * Vue (once, at module level) and provided to the app, either as a plugin or from a
 * component's `setup`; components read the session with {@link useAuth}, or with
 * {@link useAuthSelector} for anything else in the snapshot.
 *
 * ```ts
 * const auth = createAuthClient({ http, refresh })
 * createApp(App).use(createAuthPlugin(auth)).mount('#app')
 * ```
 * ```vue
 * <script setup lang="ts">
 * const { isAuthenticated, logout } = useAuth()
 * </script>
 * <template>
 *   <button v-if="isAuthenticated" @click="logout()">Sign out</button>
 * </template>
 * ```
 *
 * No ref ever holds a token: the access token is only handed out by `getAccessToken()`, so it
 * does not end up in Vue DevTools or rendered markup by accident.
 * @packageDocumentation
 */
import { useSelector } from '@xstate/vue'
import {
  computed,
  getCurrentInstance,
  getCurrentScope,
  type InjectionKey,
  inject,
  onBeforeUnmount,
  onMounted,
  onScopeDispose,
  type Plugin,
  provide,
  type Ref,
} from 'vue'
import {
  type AuthActions,
  type AuthEmittedEvent,
  type AuthEmittedType,
  type AuthFields,
  type AuthSnapshot,
  authActions,
  authFields,
  noClient,
  sameFields,
} from '../bindings/session.js'
import type { AuthClient } from '../index.js'

export type * from '../bindings/session.js'
export { authStatus } from '../bindings/session.js'

/** The key the client is provided under; `inject(authClientKey)` works too. */
export const authClientKey: InjectionKey<AuthClient> = Symbol('auth-machine client')

/**
 * A plugin that provides `client` to the whole app: `app.use(createAuthPlugin(auth))`. The
 * app neither starts nor disposes the client: it lives as long as the code that created it
 * wants.
 */
export function createAuthPlugin(client: AuthClient): Plugin {
  return { install: (app) => void app.provide(authClientKey, client) }
}

/** Clients given to `provideAuth` by each component, which Vue's `inject` would not show it. */
const provided = new WeakMap<object, AuthClient>()

/**
 * Provides `client` to the calling component and its descendants, e.g. in `App.vue`. Call it
 * in `setup`.
 */
export function provideAuth(client: AuthClient): void {
  provide(authClientKey, client)
  const instance = getCurrentInstance()
  if (instance) provided.set(instance, client)
}

/**
 * The provided client: the calling component's own from {@link provideAuth}, else the
 * nearest ancestor's or the app's. Throws when there is none, since a component that needs
 * the session cannot do anything sensible without it. Call it in `setup`.
 */
export function useAuthClient(): AuthClient {
  const instance = getCurrentInstance()
  const client = (instance && provided.get(instance)) || inject(authClientKey, null)
  if (!client) {
    throw noClient('vue', 'Install createAuthPlugin(auth), or call provideAuth(auth)')
  }
  return client
}

/**
 * The client, for a helper that subscribes to it: only where Vue will end the subscription
 * (a component's `setup` or an effect scope), since elsewhere nothing ever would.
 */
function scopedClient(helper: string): AuthClient {
  if (!getCurrentScope()) {
    throw new Error(
      `auth-machine/vue: call ${helper}() in setup() or inside an effectScope(), which end its subscription.`,
    )
  }
  return useAuthClient()
}

/**
 * A read-only ref to a value derived from the session's snapshot. It changes only when the
 * selected value changes (compared with `compare`, default `===`), not on every snapshot: a
 * ref selecting `generation` does not change while requests join the queue. Return
 * primitives, or pass `compare` when returning a new object each time.
 *
 * @example
 * ```ts
 * const queued = useAuthSelector((snapshot) => snapshot.context.queue.length)
 * ```
 */
export function useAuthSelector<T>(
  selector: (snapshot: AuthSnapshot) => T,
  compare?: (a: T, b: T) => boolean,
): Readonly<Ref<T>> {
  return useSelector(scopedClient('useAuthSelector').actor, selector, compare)
}

/** What {@link useAuth} returns: each field of the session as a read-only ref, and the actions. */
export type AuthRefs = {
  readonly [K in keyof AuthFields]: Readonly<Ref<AuthFields[K]>>
} & AuthActions

/**
 * The session's state, as refs that may be destructured, and the client's actions. A ref
 * changes only when its own value does: requests joining or leaving the queue change none.
 *
 * @example
 * ```ts
 * const { status, isAuthenticated, logout } = useAuth()
 * ```
 */
export function useAuth(): AuthRefs {
  const client = scopedClient('useAuth')
  const fields = useSelector(client.actor, authFields, sameFields)
  const refs = {} as Record<keyof AuthFields, Readonly<Ref<unknown>>>
  for (const key of Object.keys(fields.value) as (keyof AuthFields)[]) {
    refs[key] = computed(() => fields.value[key])
  }
  return { ...(refs as AuthRefs), ...authActions(client) }
}

/**
 * Calls `handler` for every event of `type` the client emits while the calling component is
 * mounted (or, outside components, until the effect scope it was called in stops), e.g.
 * `useAuthEvent('sessionExpired', () => router.push('/login'))`.
 */
export function useAuthEvent<T extends AuthEmittedType>(
  type: T,
  handler: (event: AuthEmittedEvent<T>) => void,
): void {
  const client = scopedClient('useAuthEvent')
  let subscription: { unsubscribe(): void } | undefined
  const start = () => {
    subscription = client.actor.on(type, (event) => handler(event as AuthEmittedEvent<T>))
  }
  const stop = () => subscription?.unsubscribe()
  // A server render never mounts, and never ends a component's scope either: listening from
  // mount to unmount leaves nothing behind on a client shared by every request.
  if (getCurrentInstance()) {
    onMounted(start)
    onBeforeUnmount(stop)
  } else {
    start()
    onScopeDispose(stop)
  }
}
