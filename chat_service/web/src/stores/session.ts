import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, type Session } from '../api'

const STORAGE_KEY = 'chat.session'

function restore(): Session | null {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null')
    return saved && typeof saved.token === 'string' ? (saved as Session) : null
  } catch {
    return null
  }
}

// Who is logged in; kept in localStorage like the original client did.
export const useSessionStore = defineStore('session', () => {
  const session = ref<Session | null>(restore())
  const notice = ref('')

  const loggedIn = computed(() => session.value !== null)

  function keep(value: Session | null) {
    session.value = value
    if (value) localStorage.setItem(STORAGE_KEY, JSON.stringify(value))
    else localStorage.removeItem(STORAGE_KEY)
  }

  async function register(nickname: string, password: string) {
    const created = await api.register(nickname, password)
    notice.value = ''
    keep({ token: created.token, userId: created.userId, nickname: created.nickname })
  }

  async function login(nickname: string, password: string) {
    notice.value = ''
    keep(await api.login(nickname, password))
  }

  async function logout() {
    const token = session.value?.token
    keep(null)
    if (token) {
      try {
        await api.logout(token)
      } catch {
        // Already expired, or the server is away: locally we are logged out anyway.
      }
    }
  }

  /** The server no longer knows our token (expired, logged out elsewhere). */
  function expired() {
    keep(null)
    notice.value = 'Your session has ended. Please log in again.'
  }

  return { session, notice, loggedIn, register, login, logout, expired }
})
