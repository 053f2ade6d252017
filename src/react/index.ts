/**
 * React bindings (`AuthProvider`, `useAuth`, `useAuthSelector`) land with the React issue.
 * Until then this entry point exists so the package's export map is final, and exports
 * nothing: import the client from `auth-machine` and use `@xstate/react`'s `useSelector`
 * on `auth.actor` directly.
 * @packageDocumentation
 */
export {}
