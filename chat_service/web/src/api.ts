// The chat service's HTTP API. Every failure becomes an ApiError carrying the
// server's {"error": "<text>", "code": "<code>", "field"?: "<field>"} (or a network
// error of our own).

export interface Message {
  id: number
  userId: number
  nickname: string
  text: string
  createdAt: string
}

export interface Session {
  token: string
  userId: number
  nickname: string
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message)
  }
}

// Requests the page makes by itself (polling while the live stream is down) say so: a
// sleeping environment's waker does not wake it for them, only for a person's visit.
export const BACKGROUND_HEADER = 'X-Chat-Background'

async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  background = false,
): Promise<T> {
  const headers: Record<string, string> = {}
  if (background) headers[BACKGROUND_HEADER] = '1'
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (token) headers.Authorization = `Bearer ${token}`
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.')
  }
  if (response.status === 204) return undefined as T
  let data: unknown = null
  try {
    data = await response.json()
  } catch {
    // A proxy's HTML error page, for instance.
  }
  if (!response.ok) {
    const error = data as { error?: unknown; code?: unknown; field?: unknown } | null
    throw new ApiError(
      response.status,
      typeof error?.code === 'string' ? error.code : 'http_' + response.status,
      typeof error?.error === 'string' ? error.error : `The server answered ${response.status}.`,
      typeof error?.field === 'string' ? error.field : undefined,
    )
  }
  return data as T
}

export const api = {
  register: (nickname: string, password: string) =>
    request<Session & { id: number }>('POST', '/api/register', { nickname, password }),
  login: (nickname: string, password: string) =>
    request<Session>('POST', '/api/login', { nickname, password }),
  logout: (token: string) => request<void>('POST', '/api/logout', undefined, token),
  // The browser revalidates with If-None-Match (the API sends ETag + no-cache),
  // so an unchanged poll costs a 304 and we still get the cached body here.
  messages: (query: { afterId?: number; beforeId?: number; limit?: number }, background = false) => {
    const params = new URLSearchParams()
    if (query.afterId !== undefined) params.set('after_id', String(query.afterId))
    if (query.beforeId !== undefined) params.set('before_id', String(query.beforeId))
    params.set('limit', String(query.limit ?? 50))
    return request<Message[]>('GET', `/api/messages?${params}`, undefined, undefined, background)
  },
  send: (token: string, text: string) => request<Message>('POST', '/api/messages', { text }, token),
  remove: (token: string, id: number) => request<void>('DELETE', `/api/messages/${id}`, undefined, token),
}
