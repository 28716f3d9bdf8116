// A deck.gl map inside a Streamlit component that keeps its layers between reruns.
//
// Streamlit's own deck.gl chart parses the whole deck with JSON5 on every rerun and
// rebuilds every layer. Here each layer arrives as its own JSON string: a layer whose
// string did not change keeps its deck.gl instance (its GPU buffers too), and only the
// changed layers are parsed (natively) and rebuilt. The view is set again only when the
// page frames another area, so a user's pan and zoom survive a filter change.
import {Deck, MapView} from '@deck.gl/core';
import {
  BitmapLayer, GeoJsonLayer, PathLayer, ScatterplotLayer, TextLayer
} from '@deck.gl/layers';
import {H3HexagonLayer, TileLayer} from '@deck.gl/geo-layers';
import {JSONConfiguration, JSONConverter} from '@deck.gl/json';

const LAYERS = {GeoJsonLayer, H3HexagonLayer, PathLayer, ScatterplotLayer, TextLayer};
const converter = new JSONConverter({configuration: new JSONConfiguration({classes: LAYERS})});

// A layer from pydeck's JSON: its props are converted (accessors such as "@@=h" become
// functions), its data never is. The data holds released values and labels from
// uploaded files: a label spelled like "@@#…" or "@@=…" stays text, and the rows are not
// walked and copied.
function layerOf(json) {
  const {'@@type': type, data, ...props} = JSON.parse(json);
  const Layer = LAYERS[type];
  if (!Layer) throw new Error(`unknown layer type ${type}`);
  return new Layer({...converter.convert(props), data});
}

function send(type, data) {
  window.parent.postMessage({isStreamlitMessage: true, type, ...data}, '*');
}

// A tooltip template's {field}s filled from the hovered object, set as text (never
// HTML), in the page's font.
function tooltipOf(template, font) {
  if (!template) return null;
  return ({object}) => {
    if (!object) return null;
    const text = template.text.replace(/{([^{}]+)}/g, (_, field) => String(object[field] ?? ''));
    // Blank text would leave the previous hexagon's figures showing at the new place.
    return text.trim() ? {text, style: {fontFamily: font, ...(template.style || {})}} : null;
  };
}

function tileLayer(url) {
  return new TileLayer({
    id: 'basemap-tiles',
    data: url,
    minZoom: 0,
    maxZoom: 19,
    tileSize: 256,
    renderSubLayers: (props) => {
      const {west, south, east, north} = props.tile.bbox;
      return new BitmapLayer(props, {
        data: null, image: props.data, bounds: [west, south, east, north]
      });
    }
  });
}

let deck = null;
let drawn = false;  // deck.gl has drawn a frame
let webglMissing = false;  // said once found: no later render can draw either
let shownView = '';
let tiles = null;
const kept = new Map();  // a layer's JSON string -> its deck.gl layer

// A browser with WebGL 2 switched off or missing gives deck.gl no context, and deck.gl
// then says nothing: the map stayed blank. If no frame was drawn a few seconds after the
// deck was made, ask the browser for a context (only then: making one costs time) and
// say why when there is none.
const WEBGL_CHECK_MS = 4000;
function checkWebGL() {
  if (drawn) return;
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) {
    webglMissing = true;
    showError(new Error('this browser has WebGL 2 switched off or does not support it'));
    return;
  }
  const lose = gl.getExtension('WEBGL_lose_context');
  if (lose) lose.loseContext();
}

// The layers of this rerun: those whose string was drawn before keep their instance
// (deck.gl then skips them); the others are parsed and converted. The ids of the
// rebuilt ones are written on the map (data-rebuilt) for whoever checks this.
function layersOf(strings, container) {
  const rebuilt = [];
  const layers = strings.map((json) => {
    if (kept.has(json)) return kept.get(json);
    const layer = layerOf(json);
    rebuilt.push(layer.id);
    return layer;
  });
  kept.clear();
  strings.forEach((json, i) => kept.set(json, layers[i]));
  container.dataset.rebuilt = rebuilt.join(' ');
  return layers;
}

function render({args, theme}) {
  const {height} = args;
  if (args.tiles !== (tiles && tiles.props.data)) tiles = args.tiles ? tileLayer(args.tiles) : null;
  const container = document.getElementById('map');
  const layers = layersOf(args.layers, container);
  const props = {
    layers: tiles ? [tiles, ...layers] : layers,
    getTooltip: tooltipOf(args.tooltip, theme && theme.font)
  };
  const view = JSON.stringify(args.view);
  if (view !== shownView) {  // the page frames another area: move there
    props.initialViewState = args.view;
    shownView = view;
  }
  container.style.height = `${height}px`;
  container.setAttribute('aria-label', args.alt || 'Map');
  if (deck) {
    deck.setProps(props);
  } else {
    deck = new Deck({
      parent: container,
      views: new MapView({repeat: true}),
      controller: true,
      onError: showError,
      onAfterRender: () => { drawn = true; },
      width: '100%',
      height: `${height}px`,
      ...props
    });
    setTimeout(checkWebGL, WEBGL_CHECK_MS);
  }
  send('streamlit:setFrameHeight', {height});
}

// A map that cannot be drawn says so in one line, as text, instead of staying blank: a
// layer deck.gl refuses (the next render that succeeds takes the line away), or no WebGL
// 2 in this browser (checkWebGL; the line stays).
const errorNote = () => document.getElementById('map-error');

function showError(error) {
  let note = errorNote();
  if (!note) {
    note = document.createElement('p');
    note.id = 'map-error';
    note.setAttribute('role', 'alert');
    document.body.prepend(note);
  }
  note.textContent = `The map could not be drawn: ${error && error.message ? error.message : error}`;
  send('streamlit:setFrameHeight', {height: document.body.scrollHeight});
}

function clearError() {
  const note = errorNote();
  if (note) note.remove();
}

window.addEventListener('message', (event) => {
  // Only the Streamlit page that holds this frame may draw in it.
  if (event.source !== window.parent) return;
  if (!event.data || event.data.type !== 'streamlit:render') return;
  try {
    render(event.data);
    if (!webglMissing) clearError();
  } catch (error) {
    showError(error);
  }
});
send('streamlit:componentReady', {apiVersion: 1});
