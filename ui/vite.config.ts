import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// Tauri serves the built files from ui/dist; in development it loads the
// dev server on a fixed port (tauri.conf.json devUrl).
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  base: "./",
  server: {
    port: 5173,
    strictPort: true,
    watch: { ignored: ["**/node_modules/**", "**/dist/**"] },
  },
  envPrefix: ["VITE_", "TAURI_ENV_"],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: ["es2021", "safari15", "chrome105"],
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
