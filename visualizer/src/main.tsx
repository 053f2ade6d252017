import { AuthProvider } from 'auth-machine/react'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { startRecording } from './activity.js'
import { auth } from './auth.js'
import { App } from './components/App.js'
import { startPolling } from './status.js'
import './styles.css'

startRecording()
startPolling()

const root = document.getElementById('root')
if (!root) throw new Error('#root is missing from index.html')
createRoot(root).render(
  <StrictMode>
    <AuthProvider client={auth}>
      <App />
    </AuthProvider>
  </StrictMode>,
)
