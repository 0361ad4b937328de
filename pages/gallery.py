"""gallery page."""
import streamlit as st

st.title("Gallery")
st.warning("This page is being built.")
