// The status window: what the tray shows, in words. It asks the tray, never the agent.
const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

function strip(line) {
  const colon = line.indexOf(': ');
  return colon >= 0 ? line.slice(colon + 2) : line;
}

function render(view) {
  const headline = document.getElementById('headline');
  headline.textContent = view.headline;
  headline.dataset.look = view.look;
  document.getElementById('server').textContent = strip(view.server);
  document.getElementById('agent').textContent = strip(view.agent);
  document.getElementById('last-contact').textContent = strip(view.last_contact);
  const error = document.getElementById('error');
  error.hidden = !view.error;
  error.textContent = view.error || '';
}

invoke('status').then(render);
listen('status', (event) => render(event.payload));
invoke('about').then((about) => {
  document.getElementById('version').textContent = `${about.name} ${about.version}`;
  document.getElementById('license').textContent = about.license;
});
