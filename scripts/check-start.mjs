// CI check of the README's promise: `npm start` serves the visualizer against the built-in
// token server, prints its URL, and stops cleanly on Ctrl-C. Exits 0 when all of that holds.
import { spawn } from 'node:child_process'

const port = process.env.CHECK_PORT ?? '5199'
const child = spawn('npm', ['start'], {
  env: { ...process.env, PORT: port },
  detached: true, // its own process group, so Ctrl-C reaches npm and node alike
  stdio: ['ignore', 'pipe', 'inherit'],
})
let output = ''
child.stdout.on('data', (chunk) => {
  output += chunk
  process.stdout.write(chunk)
})
const exited = new Promise((resolve) =>
  child.on('exit', (code, signal) => resolve({ code, signal })),
)

function fail(message) {
  console.error(`check-start: ${message}`)
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {}
  process.exit(1)
}

const deadline = setTimeout(() => fail('no visualizer URL within 180 s'), 180_000)
let url
await new Promise((resolve) => {
  child.stdout.on('data', () => {
    url ??= /auth-machine visualizer\s+(http:\/\/\S+)/.exec(output)?.[1]
    if (url) resolve()
  })
  exited.then(() => url || fail('npm start exited before printing the URL'))
})
clearTimeout(deadline)

const page = await fetch(url)
const html = await page.text()
if (!page.ok || !/<script/.test(html)) fail(`the page at ${url} answered ${page.status}`)
const counters = await fetch(new URL('/__control/counters', url))
if (!counters.ok) fail(`the token server behind ${url} answered ${counters.status}`)
console.log(`check-start: ${url} serves the page and the token server`)

process.kill(-child.pid, 'SIGINT')
const stopTimer = setTimeout(() => fail('npm start did not stop within 30 s of Ctrl-C'), 30_000)
await exited
clearTimeout(stopTimer)
if (!/stopped\./.test(output)) fail('npm start did not report a clean stop')
console.log('check-start: stopped cleanly on Ctrl-C')
