// `npm start`: the built-in token server and the live visualizer page on one local origin.
// Settings come from the environment (see visualizer/README.md), e.g.
//   ACCESS_TOKEN_TTL=10 PORT=8080 npm start
// The terminal demo is `npm run demo`.

import { optionsFromEnv, startVisualizer } from '../visualizer/serve.mjs'

let options
try {
  options = optionsFromEnv(process.env)
} catch (error) {
  console.error(`auth-machine visualizer: ${error.message}`)
  process.exit(2)
}

console.log(options.dev ? 'starting Vite (dev mode)…' : 'building the visualizer page…')
const visualizer = await startVisualizer(options)
const { settings } = visualizer
console.log(`
  auth-machine visualizer   ${visualizer.url}
  token server              ${visualizer.authServer.url} (access tokens live ${settings.accessTokenTtl} s)
  client                    refresh ${settings.refreshMargin} ms early, timeout ${settings.refreshTimeout} ms, ${settings.retry.retries} retries

  Open the URL in a browser. Ctrl-C stops everything.
`)

let stopping = false
async function stop(signal) {
  if (stopping) {
    // A second Ctrl-C while closing: give up waiting.
    process.exit(1)
  }
  stopping = true
  console.log(`\n${signal}: stopping the visualizer and the token server…`)
  try {
    await visualizer.close()
    console.log('stopped.')
    process.exit(0)
  } catch (error) {
    console.error(error)
    process.exit(1)
  }
}
process.on('SIGINT', () => void stop('SIGINT'))
process.on('SIGTERM', () => void stop('SIGTERM'))
