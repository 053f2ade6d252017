import { svelte } from '@sveltejs/vite-plugin-svelte'
import { svelteTesting } from '@testing-library/svelte/vite'
import { defineConfig } from 'vitest/config'

// Svelte components compile to a client build only under the `browser` resolve condition,
// which would also switch axios and others to their browser builds: so Svelte's component
// tests are a project of their own, and everything else keeps Node's resolution.
const svelteComponents = 'tests/svelte/*.component.test.ts'

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['tests/**/*.test.ts'],
          exclude: [svelteComponents],
          environment: 'node',
        },
      },
      {
        extends: true,
        plugins: [svelte({ configFile: false }), svelteTesting()],
        // As a bundler resolves for the browser: @xstate/svelte's ES module build (the
        // `module` condition). Its CommonJS build would load a second `svelte/store`, with an
        // update queue of its own, and combined stores would glitch as in no real app.
        resolve: { conditions: ['module', 'browser', 'development'] },
        test: {
          name: 'svelte',
          include: [svelteComponents],
          environment: 'happy-dom',
        },
      },
    ],
  },
})
