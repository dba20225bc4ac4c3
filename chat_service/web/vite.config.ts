import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The chat service serves dist/ at / and the API under /api; `npm run dev`
// proxies the API to a service running locally on its default port.
export default defineConfig({
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets' },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
})
