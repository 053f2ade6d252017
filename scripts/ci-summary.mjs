// Prints the closing line CI is judged by: "N passed, M failed", totalling the vitest suite
// and the README checks (`npm run demo`, `npm run demo:redis`, `npm start`: one each, given as
// exit statuses).
// Exits non-zero when anything failed or nothing ran.
import { readFileSync } from 'node:fs'

const [reportPath, ...checkStatuses] = process.argv.slice(2)
let passed = 0
let failed = 0
try {
  const report = JSON.parse(readFileSync(reportPath, 'utf8'))
  passed += report.numPassedTests
  failed += report.numFailedTests + (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
  if (report.numPendingTests) console.log(`${report.numPendingTests} skipped tests count as failed`)
} catch (error) {
  console.log(`no test report at ${reportPath}: ${error.message}`)
  failed += 1
}
for (const status of checkStatuses) {
  if (status === '0') passed += 1
  else failed += 1
}

console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 1 ? 0 : 1)
