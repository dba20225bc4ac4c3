import { defineStore } from 'pinia'
import { ref } from 'vue'
import { api, ApiError, type Message } from '../api'

const PAGE = 50
const POLL_MS = 3000
const STREAM_RETRY_MS = 15000
const RESYNC_EVERY_POLLS = 10
const KEEP_MAX = 1000

export type LiveMode = 'connecting' | 'live' | 'polling' | 'offline'

// The shared chat: the messages shown, kept in id order, and how they stay fresh.
//
// Live updates come from Server-Sent Events; when the stream fails we poll
// GET /api/messages?after_id=<cursor>. The cursor only ever advances from what a
// listing returned, never from the id of a message we just posted: posting does
// not prove that other people's messages with lower ids have been seen (the
// original client skipped them that way).
export const useChatStore = defineStore('chat', () => {
  const messages = ref<Message[]>([])
  const mode = ref<LiveMode>('connecting')
  const problem = ref('')
  const hasOlder = ref(false)
  const loadingOlder = ref(false)

  let cursor = 0
  let source: EventSource | null = null
  let streamBroken = false
  let pollTimer: ReturnType<typeof setInterval> | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let polls = 0
  let running = false

  function merge(incoming: Message[]) {
    if (incoming.length === 0) return
    const byId = new Map(messages.value.map((m) => [m.id, m]))
    for (const m of incoming) byId.set(m.id, m)
    const sorted = [...byId.values()].sort((a, b) => a.id - b.id)
    messages.value = sorted.length > KEEP_MAX ? sorted.slice(-KEEP_MAX) : sorted
  }

  function drop(id: number) {
    messages.value = messages.value.filter((m) => m.id !== id)
  }

  function advance(listed: Message[]) {
    const last = listed[listed.length - 1]
    if (last && last.id > cursor) cursor = last.id
  }

  async function loadLatest() {
    const page = await api.messages({ limit: PAGE })
    messages.value = page
    hasOlder.value = page.length === PAGE
    advance(page)
  }

  // Reload everything from the oldest message shown: picks up deletions and
  // anything a broken stream may have missed.
  async function resync(background = false) {
    const oldest = messages.value[0]?.id
    if (oldest === undefined) return loadLatest()
    const fresh: Message[] = []
    let after = oldest - 1
    if (after < 1) {
      // after_id=0 means "no cursor" (the latest page), so the first message is read
      // with before_id instead.
      fresh.push(...(await api.messages({ beforeId: oldest + 1, limit: 1 }, background)))
      after = oldest
    }
    for (let i = 0; i < 5; i++) {
      const page = await api.messages({ afterId: after, limit: 200 }, background)
      fresh.push(...page)
      advance(page)
      if (page.length < 200) break
      after = page[page.length - 1].id
    }
    messages.value = fresh
  }

  function setProblem(error: unknown) {
    problem.value =
      error instanceof ApiError ? error.message : 'Something went wrong while updating the chat.'
  }

  async function start() {
    stop()
    running = true
    mode.value = 'connecting'
    try {
      await loadLatest()
      problem.value = ''
    } catch (error) {
      setProblem(error)
    }
    openStream()
  }

  function openStream() {
    if (!running) return
    if (typeof EventSource === 'undefined') {
      startPolling()
      return
    }
    const stream = new EventSource(`/api/events?after_id=${cursor}`)
    source = stream
    stream.addEventListener('open', () => {
      mode.value = 'live'
      problem.value = ''
      stopPolling()
      if (streamBroken) {
        streamBroken = false
        resync().catch(setProblem)
      }
    })
    stream.addEventListener('message.created', (event) => {
      merge([JSON.parse((event as MessageEvent<string>).data) as Message])
    })
    stream.addEventListener('message.deleted', (event) => {
      drop((JSON.parse((event as MessageEvent<string>).data) as { id: number }).id)
    })
    stream.addEventListener('resync', () => {
      resync().catch(setProblem)
    })
    stream.addEventListener('error', () => {
      streamBroken = true
      if (stream.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. 503): poll, and try the stream again later.
        source = null
        retryTimer = setTimeout(() => {
          retryTimer = null
          openStream()
        }, STREAM_RETRY_MS)
      }
      startPolling()
    })
  }

  function startPolling() {
    if (pollTimer !== null || !running) return
    mode.value = 'polling'
    pollTimer = setInterval(() => void poll(), POLL_MS)
    void poll()
  }

  function stopPolling() {
    if (pollTimer !== null) clearInterval(pollTimer)
    pollTimer = null
  }

  async function poll() {
    try {
      polls += 1
      if (polls % RESYNC_EVERY_POLLS === 0) {
        await resync(true)
      } else {
        const page = await api.messages({ afterId: cursor, limit: 200 }, true)
        merge(page)
        advance(page)
      }
      if (mode.value !== 'live') mode.value = 'polling'
      problem.value = ''
    } catch (error) {
      mode.value = 'offline'
      if (error instanceof ApiError && (error.code === 'sleeping' || error.code === 'suspended')) {
        // The environment went to sleep (or was suspended) under this open page: stop
        // asking. The stream keeps retrying now and then without waking it, and picks up
        // again once someone wakes it.
        stopPolling()
        problem.value =
          error.code === 'sleeping'
            ? 'This chat went to sleep after a while without visitors. Reload the page to wake it.'
            : 'This chat is suspended.'
        return
      }
      setProblem(error)
    }
  }

  async function send(token: string, text: string) {
    const message = await api.send(token, text)
    merge([message]) // shown at once; the cursor stays where the listings left it
  }

  async function remove(token: string, id: number) {
    await api.remove(token, id)
    drop(id)
  }

  async function loadOlder() {
    const oldest = messages.value[0]?.id
    if (oldest === undefined || loadingOlder.value) return
    loadingOlder.value = true
    try {
      const page = await api.messages({ beforeId: oldest, limit: PAGE })
      messages.value = [...page, ...messages.value]
      hasOlder.value = page.length === PAGE
    } catch (error) {
      setProblem(error)
    } finally {
      loadingOlder.value = false
    }
  }

  function stop() {
    running = false
    source?.close()
    source = null
    stopPolling()
    if (retryTimer !== null) clearTimeout(retryTimer)
    retryTimer = null
    streamBroken = false
    polls = 0
    cursor = 0
    messages.value = []
  }

  return { messages, mode, problem, hasOlder, loadingOlder, start, stop, send, remove, loadOlder }
})
