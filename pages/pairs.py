"""pairs page."""
import streamlit as st

st.title("Pairs")
st.warning("This page is being built.")
