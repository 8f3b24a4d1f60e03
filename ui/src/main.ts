import { mount } from "svelte";
import App from "./App.svelte";
import "./styles.css";
import { mark } from "./lib/startup";

mark("script_start");

const target = document.getElementById("app");
if (!target) throw new Error("missing #app");

const app = mount(App, { target });
mark("mounted");
export default app;
