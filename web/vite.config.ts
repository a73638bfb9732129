import { defineConfig } from 'vite';

// The build lands in dist/ui/, which web/embed.go embeds into the zipq binary:
// no CDN or separate web server at run time.
export default defineConfig({
  base: '/',
  build: { outDir: 'dist/ui', emptyOutDir: true, assetsDir: 'assets', chunkSizeWarningLimit: 1000 },
  server: { proxy: { '/api': 'http://127.0.0.1:9411', '/admin': 'http://127.0.0.1:9411', '/config.json': 'http://127.0.0.1:9411' } },
});
